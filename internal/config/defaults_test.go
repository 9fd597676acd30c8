package config_test

import (
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/config"
)

// allRoles are the settings of stevedore serve: every flag of the table.
var allRoles = config.Roles{Dispatcher: true, Worker: true, EmbeddedNATS: true}

// defaultsTable are the settings whose defaults internal/app writes, each
// with where the parsed value lands and the constant it must equal.
var defaultsTable = []struct {
	flag, env string
	got       func(o *config.Options) any
	want      any
}{
	{"addr", "STEVEDORE_ADDR", func(o *config.Options) any { return o.Addr }, app.DefaultAddr},
	{"workers", "STEVEDORE_WORKERS", func(o *config.Options) any { return o.Workers }, app.DefaultWorkers},
	{"lease-ttl", "STEVEDORE_LEASE_TTL", func(o *config.Options) any { return o.LeaseTTL }, app.DefaultLeaseTTL},
	{"ack-wait", "STEVEDORE_ACK_WAIT", func(o *config.Options) any { return o.AckWait }, app.DefaultAckWait},
	{"max-deliver", "STEVEDORE_MAX_DELIVER", func(o *config.Options) any { return o.MaxDeliver }, app.DefaultMaxDeliver},
	{"partial-retry-base", "STEVEDORE_PARTIAL_RETRY_BASE", func(o *config.Options) any { return o.Retry.Base }, app.DefaultRetry().Base},
	{"partial-retry-max", "STEVEDORE_PARTIAL_RETRY_MAX", func(o *config.Options) any { return o.Retry.Max }, app.DefaultRetry().Max},
	{"enrichment-interval", "STEVEDORE_ENRICHMENT_INTERVAL", func(o *config.Options) any { return o.EnrichmentInterval }, time.Duration(app.DefaultEnrichmentInterval)},
	{"enrichment-max-age", "STEVEDORE_ENRICHMENT_MAX_AGE", func(o *config.Options) any { return o.EnrichmentMaxAge }, time.Duration(app.DefaultEnrichmentMaxAge)},
	{"requeue-rate", "STEVEDORE_REQUEUE_RATE", func(o *config.Options) any { return o.RequeueRate }, app.DefaultRequeueRate},
	{"reindex-rate", "STEVEDORE_REINDEX_RATE", func(o *config.Options) any { return o.ReindexRate }, app.DefaultReindexRate},
	{"upgrade-window", "STEVEDORE_UPGRADE_WINDOW", func(o *config.Options) any { return o.UpgradeWindow }, time.Duration(app.DefaultUpgradeWindow)},
	{"index-wait", "STEVEDORE_INDEX_WAIT", func(o *config.Options) any { return o.IndexWait }, time.Duration(app.DefaultIndexWait)},
	{"answer-max-bytes", "STEVEDORE_ANSWER_MAX_BYTES", func(o *config.Options) any { return o.AnswerBytes }, int64(app.DefaultAnswerBytes)},
	{"blob-cache-size", "STEVEDORE_BLOB_CACHE_SIZE", func(o *config.Options) any { return o.BlobCacheSize }, int64(app.DefaultBlobCacheSize)},
}

// parse registers every flag with the environment of the table cleared,
// parses args and validates.
func parse(t *testing.T, args ...string) (*config.Options, *flag.FlagSet) {
	t.Helper()
	fs := flag.NewFlagSet("stevedore serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := config.Register(fs, allRoles)
	if err := fs.Parse(append([]string{"--database-url=postgres://db/x", "--nats-store-dir=/tmp/x"}, args...)); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(allRoles); err != nil {
		t.Fatal(err)
	}
	return o, fs
}

// readmeDefaults returns the default column of README's flag tables, by
// flag name, and the environment variable each row names.
func readmeDefaults(t *testing.T) (defaults, envs map[string]string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `--([a-z-]+)` \\| `([A-Z_]+)` \\| ([^|]+) \\|")
	defaults, envs = map[string]string{}, map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		defaults[m[1]], envs[m[1]] = strings.TrimSpace(m[3]), m[2]
	}
	return defaults, envs
}

// TestDocumentedDefaultsAreTheConstants: for every default internal/app
// writes, the value the flags take with nothing set, the value --help shows,
// and the value README's tables document all equal the constant.
func TestDocumentedDefaultsAreTheConstants(t *testing.T) {
	for _, d := range defaultsTable {
		t.Setenv(d.env, "")
	}
	unset, fs := parse(t)
	var help strings.Builder
	fs.SetOutput(&help)
	fs.PrintDefaults()
	readme, envs := readmeDefaults(t)
	for _, d := range defaultsTable {
		t.Run(d.flag, func(t *testing.T) {
			if got := d.got(unset); got != d.want {
				t.Errorf("with nothing set: %v, want the constant %v", got, d.want)
			}
			// --help shows the flag's default value (or, for sizes, says
			// it in the usage text); parsed back, it is the constant.
			f := fs.Lookup(d.flag)
			shown := f.DefValue
			if m := regexp.MustCompile(`default ([0-9]+[KMGT]iB)\)`).FindStringSubmatch(f.Usage); m != nil {
				shown = m[1]
			}
			if !strings.Contains(help.String(), "-"+d.flag) || shown == "" {
				t.Fatalf("--help shows no default for --%s", d.flag)
			}
			if o, _ := parse(t, "--"+d.flag+"="+shown); d.got(o) != d.want {
				t.Errorf("--help shows %q, which is %v, want the constant %v", shown, d.got(o), d.want)
			}
			doc, ok := readme[d.flag]
			if !ok {
				t.Fatalf("README has no table row for --%s", d.flag)
			}
			if envs[d.flag] != d.env {
				t.Errorf("README names %s for --%s, want %s", envs[d.flag], d.flag, d.env)
			}
			if o, _ := parse(t, "--"+d.flag+"="+doc); d.got(o) != d.want {
				t.Errorf("README documents %q, which is %v, want the constant %v", doc, d.got(o), d.want)
			}
		})
	}
}

// TestAppDefaultsFillAZeroConfig: a zero app.Config started gets the same
// constants (Defaults is what Start applies).
func TestAppDefaultsFillAZeroConfig(t *testing.T) {
	d := app.Defaults()
	for name, pair := range map[string][2]any{
		"LeaseTTL":           {d.LeaseTTL, time.Duration(app.DefaultLeaseTTL)},
		"AckWait":            {d.AckWait, time.Duration(app.DefaultAckWait)},
		"MaxDeliver":         {d.MaxDeliver, app.DefaultMaxDeliver},
		"RetryBase":          {d.RetryBase, time.Duration(app.DefaultRetryBase)},
		"Retry":              {d.Retry, app.DefaultRetry()},
		"EnrichmentInterval": {d.EnrichmentInterval, time.Duration(app.DefaultEnrichmentInterval)},
		"EnrichmentMaxAge":   {d.EnrichmentMaxAge, time.Duration(app.DefaultEnrichmentMaxAge)},
		"RequeueRate":        {d.RequeueRate, app.DefaultRequeueRate},
		"ReindexRate":        {d.ReindexRate, app.DefaultReindexRate},
		"SweepInterval":      {d.SweepInterval, time.Duration(app.DefaultSweepInterval)},
		"ElectInterval":      {d.ElectInterval, time.Duration(app.DefaultElectInterval)},
		"IndexWait":          {d.IndexWait, time.Duration(app.DefaultIndexWait)},
		"AnswerBytes":        {d.AnswerBytes, int64(app.DefaultAnswerBytes)},
		"UpgradeWindow":      {d.UpgradeWindow, time.Duration(app.DefaultUpgradeWindow)},
	} {
		if pair[0] != pair[1] {
			t.Errorf("Defaults().%s = %v, want %v", name, pair[0], pair[1])
		}
	}
	if d.Workers != 0 || d.Dispatcher || d.BlobCacheSize != 0 {
		t.Errorf("Defaults() turns on a role or the blob cache: %d workers, dispatcher %v, cache %d", d.Workers, d.Dispatcher, d.BlobCacheSize)
	}
}
