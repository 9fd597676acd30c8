// Package config binds a node's settings to command-line flags, with
// environment variables as defaults, and validates them.
package config

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stevedore-dev/stevedore/internal/enrich"

	"github.com/stevedore-dev/stevedore/internal/app"
)

// Options are the settings of a Stevedore process.
type Options struct {
	app.Config
	// Addr is the HTTP API's listen address.
	Addr string
	// sources are the raw --enrichment-source values.
	sources []string
	// reg holds the raw registry and blob-cache settings (registries.go).
	reg registryFlags
	// clair holds the raw authentication settings (clair.go).
	clair clairFlags
	// lim holds the raw bounds of layer reading (limits.go).
	lim limitFlags
	// harborToken is Harbor's scanner API token (harbor.go).
	harborToken secretSetting
	// jobSecret is the job secret (jobsecret.go).
	jobSecret secretSetting

	envErrs []error
	// natsStoreErr says why DefaultNATSStoreDir has no answer.
	natsStoreErr error
}

// Roles says which settings a binary takes.
type Roles struct {
	Dispatcher bool
	Worker     bool
	// EmbeddedNATS allows running without NATS_URL.
	EmbeddedNATS bool
	// KeepNATSStore makes the embedded JetStream server keep its store
	// (pending jobs, scheduled retries) across restarts: --nats-store-dir
	// defaults to DefaultNATSStoreDir instead of a temporary directory.
	KeepNATSStore bool
}

// DefaultNATSStoreDir is where a server that keeps its embedded JetStream
// store puts it when --nats-store-dir is not given:
// <user cache dir>/stevedore/jetstream (~/.cache/stevedore/jetstream on
// Linux, or $XDG_CACHE_HOME/stevedore/jetstream).
func DefaultNATSStoreDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache dir for the embedded JetStream store: %w", err)
	}
	return filepath.Join(dir, "stevedore", "jetstream"), nil
}

// Register defines the flags for roles on fs, reading defaults from the
// environment (DATABASE_URL, NATS_URL, STEVEDORE_*). Call Validate after
// fs.Parse.
func Register(fs *flag.FlagSet, roles Roles) *Options {
	o := &Options{}
	fs.StringVar(&o.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "Postgres URL (env DATABASE_URL)")
	natsHelp := "NATS server URL, nats-server >= 2.12 with JetStream (env NATS_URL)"
	if roles.EmbeddedNATS {
		natsHelp += "; empty: embed a JetStream server in this process"
		storeDir, storeHelp := os.Getenv("STEVEDORE_NATS_STORE_DIR"), "embedded JetStream store directory (env STEVEDORE_NATS_STORE_DIR); empty: a temporary one, removed on exit"
		if roles.KeepNATSStore {
			storeHelp = "embedded JetStream store directory, kept across restarts (env STEVEDORE_NATS_STORE_DIR)"
			if storeDir == "" {
				storeDir, o.natsStoreErr = DefaultNATSStoreDir()
			}
		}
		fs.StringVar(&o.NATSStoreDir, "nats-store-dir", storeDir, storeHelp)
		fs.IntVar(&o.NATSPort, "nats-port", o.envInt("STEVEDORE_NATS_PORT", 0), "embedded NATS port on 127.0.0.1 (env STEVEDORE_NATS_PORT; 0: any free port)")
	}
	fs.StringVar(&o.NATSURL, "nats-url", os.Getenv("NATS_URL"), natsHelp)
	fs.IntVar(&o.NATSReplicas, "nats-replicas", o.envInt("STEVEDORE_NATS_REPLICAS", 0), "replicas of the job stream, 1 to 5 (env STEVEDORE_NATS_REPLICAS; 0: 3 when the NATS server is clustered, 1 when embedded or single)")
	o.registerRegistries(fs, roles)
	o.registerLimits(fs, roles)
	if roles.Dispatcher {
		o.Dispatcher = true
		fs.StringVar(&o.Addr, "addr", envString("STEVEDORE_ADDR", app.DefaultAddr), "HTTP API listen address (env STEVEDORE_ADDR)")
		o.registerWebhooks(fs)
		o.registerClair(fs)
		o.registerHarbor(fs)
		if v := os.Getenv("STEVEDORE_ENRICHMENT_SOURCES"); v != "" {
			o.sources = strings.Split(v, ",")
		}
		fs.Func("enrichment-source", "NAME=URL: fetch enrichment data NAME from URL on a schedule; repeatable (env STEVEDORE_ENRICHMENT_SOURCES, comma-separated). Names: "+strings.Join(slices.Sorted(maps.Keys(enrich.Kinds())), ", "), func(v string) error {
			o.sources = append(o.sources, v)
			return nil
		})
		fs.DurationVar(&o.EnrichmentInterval, "enrichment-interval", o.envDuration("STEVEDORE_ENRICHMENT_INTERVAL", app.DefaultEnrichmentInterval), "how often enrichment sources are asked (env STEVEDORE_ENRICHMENT_INTERVAL)")
		fs.DurationVar(&o.IndexWait, "index-wait", o.envDuration("STEVEDORE_INDEX_WAIT", app.DefaultIndexWait), "longest POST /indexer/api/v1/index_report waits for a report before answering 202 (env STEVEDORE_INDEX_WAIT; keep it below the client's timeout: Quay's is 600s)")
		fs.BoolVar(&o.ClairServePartial, "clair-serve-partial", o.envBool("STEVEDORE_CLAIR_SERVE_PARTIAL", false), "serve IndexPartial reports as IndexPartial on Clair's paths instead of as IndexFinished (env STEVEDORE_CLAIR_SERVE_PARTIAL)")
		fs.IntVar(&o.RequeueRate, "requeue-rate", o.envInt("STEVEDORE_REQUEUE_RATE", app.DefaultRequeueRate), "partial reports requeued per second when their data arrives (env STEVEDORE_REQUEUE_RATE)")
		fs.IntVar(&o.ReindexRate, "reindex-rate", o.envInt("STEVEDORE_REINDEX_RATE", app.DefaultReindexRate), "re-index jobs queued per second for reports made by an older scanner set (env STEVEDORE_REINDEX_RATE)")
	}
	if roles.Dispatcher || roles.Worker {
		o.registerJobSecret(fs)
		fs.DurationVar(&o.UpgradeWindow, "upgrade-window", o.envDuration("STEVEDORE_UPGRADE_WINDOW", app.DefaultUpgradeWindow), "after an upgrade from a release before migration 00025, how long reports are stored whole in their rows (and not compacted), which that release's replicas read until they are replaced; 0: none (env STEVEDORE_UPGRADE_WINDOW)")
		fs.DurationVar(&o.EnrichmentMaxAge, "enrichment-max-age", o.envDuration("STEVEDORE_ENRICHMENT_MAX_AGE", app.DefaultEnrichmentMaxAge), "enrichment data older than this makes reports partial (env STEVEDORE_ENRICHMENT_MAX_AGE)")
	}
	if roles.Worker {
		fs.IntVar(&o.Workers, "workers", o.envInt("STEVEDORE_WORKERS", app.DefaultWorkers), "jobs run at once (env STEVEDORE_WORKERS)")
		fs.DurationVar(&o.LeaseTTL, "lease-ttl", o.envDuration("STEVEDORE_LEASE_TTL", app.DefaultLeaseTTL), "manifest lease duration, renewed every third of it; a dead worker's job is taken over once it runs out (env STEVEDORE_LEASE_TTL)")
		fs.DurationVar(&o.AckWait, "ack-wait", o.envDuration("STEVEDORE_ACK_WAIT", app.DefaultAckWait), "JetStream ack wait; in-progress is signalled every third of it; keep it no longer than --lease-ttl, or a dead worker's job waits for it (env STEVEDORE_ACK_WAIT)")
		fs.IntVar(&o.MaxDeliver, "max-deliver", o.envInt("STEVEDORE_MAX_DELIVER", app.DefaultMaxDeliver), "deliveries of one job before it is recorded as IndexError (env STEVEDORE_MAX_DELIVER)")
		fs.DurationVar(&o.Retry.Base, "partial-retry-base", o.envDuration("STEVEDORE_PARTIAL_RETRY_BASE", app.DefaultRetry().Base), "first delay before a partial report is retried, doubled per attempt (env STEVEDORE_PARTIAL_RETRY_BASE)")
		fs.DurationVar(&o.Retry.Max, "partial-retry-max", o.envDuration("STEVEDORE_PARTIAL_RETRY_MAX", app.DefaultRetry().Max), "longest delay between retries of a partial report (env STEVEDORE_PARTIAL_RETRY_MAX)")
	}
	return o
}

// Validate checks the parsed settings; the error names the flag.
func (o *Options) Validate(roles Roles) error {
	errs := append([]error(nil), o.envErrs...)
	errs = append(errs, o.validateWebhooks()...)
	errs = append(errs, o.validateClair()...)
	errs = append(errs, o.validateHarbor()...)
	errs = append(errs, o.validateJobSecret()...)
	errs = append(errs, o.validateRegistries(roles)...)
	errs = append(errs, o.validateLimits(roles)...)
	if o.DatabaseURL == "" {
		errs = append(errs, errors.New("--database-url: required (or set DATABASE_URL), e.g. postgres://user@127.0.0.1:5432/stevedore"))
	}
	if !roles.EmbeddedNATS && o.NATSURL == "" {
		errs = append(errs, errors.New("--nats-url: required (or set NATS_URL), e.g. nats://127.0.0.1:4222"))
	}
	if roles.KeepNATSStore && o.NATSURL == "" && o.NATSStoreDir == "" && o.natsStoreErr != nil {
		errs = append(errs, fmt.Errorf("--nats-store-dir: required (or set STEVEDORE_NATS_STORE_DIR): %w", o.natsStoreErr))
	}
	if o.NATSReplicas < 0 || o.NATSReplicas > 5 {
		errs = append(errs, fmt.Errorf("--nats-replicas: %d: want 0 (automatic) or 1 to 5", o.NATSReplicas))
	}
	if o.NATSPort < 0 || o.NATSPort > 65535 {
		errs = append(errs, fmt.Errorf("--nats-port: %d is not a port", o.NATSPort))
	}
	kinds := enrich.Kinds()
	o.EnrichmentSources = nil
	for _, src := range o.sources {
		name, u, ok := strings.Cut(strings.TrimSpace(src), "=")
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("--enrichment-source %q: want NAME=URL", src))
		case kinds[name].Name == "":
			errs = append(errs, fmt.Errorf("--enrichment-source %q: unknown data %q (known: %s)", src, name, strings.Join(slices.Sorted(maps.Keys(kinds)), ", ")))
		case !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://"):
			errs = append(errs, fmt.Errorf("--enrichment-source %q: %q is not an http(s) URL", src, u))
		default:
			o.EnrichmentSources = append(o.EnrichmentSources, enrich.Source{Name: name, URL: u})
		}
	}
	if o.Dispatcher {
		if o.EnrichmentInterval < time.Second {
			errs = append(errs, fmt.Errorf("--enrichment-interval: %s: want at least 1s", o.EnrichmentInterval))
		}
		if o.IndexWait < time.Second || o.IndexWait > time.Hour {
			errs = append(errs, fmt.Errorf("--index-wait: %s: want 1s to 1h", o.IndexWait))
		}
		if o.RequeueRate < 1 {
			errs = append(errs, fmt.Errorf("--requeue-rate: %d: want at least 1", o.RequeueRate))
		}
		if o.ReindexRate < 1 {
			errs = append(errs, fmt.Errorf("--reindex-rate: %d: want at least 1", o.ReindexRate))
		}
	}
	if o.Dispatcher || roles.Worker {
		errs = append(errs, o.checkUpgradeWindow())
		if o.EnrichmentMaxAge < time.Second {
			errs = append(errs, fmt.Errorf("--enrichment-max-age: %s: want at least 1s", o.EnrichmentMaxAge))
		}
	}
	if roles.Worker {
		if o.Retry.Base < time.Second || o.Retry.Max < o.Retry.Base {
			errs = append(errs, fmt.Errorf("--partial-retry-base %s, --partial-retry-max %s: want a base of at least 1s and a max not below it", o.Retry.Base, o.Retry.Max))
		}
		if o.Workers < 1 || o.Workers > 256 {
			errs = append(errs, fmt.Errorf("--workers: %d: want 1 to 256", o.Workers))
		}
		if o.LeaseTTL < time.Second {
			errs = append(errs, fmt.Errorf("--lease-ttl: %s: want at least 1s", o.LeaseTTL))
		}
		if o.AckWait < time.Second {
			errs = append(errs, fmt.Errorf("--ack-wait: %s: want at least 1s", o.AckWait))
		}
		if o.MaxDeliver < 1 {
			errs = append(errs, fmt.Errorf("--max-deliver: %d: want at least 1", o.MaxDeliver))
		}
	}
	return errors.Join(errs...)
}

func envString(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// checkUpgradeWindow checks --upgrade-window and turns 0 (none) into
// app.Config's none, a negative window (zero there is the default).
func (o *Options) checkUpgradeWindow() error {
	switch {
	case o.UpgradeWindow < 0 || o.UpgradeWindow > 7*24*time.Hour:
		return fmt.Errorf("--upgrade-window: %s: want 0 to 168h", o.UpgradeWindow)
	case o.UpgradeWindow == 0:
		o.UpgradeWindow = -1
	}
	return nil
}

// envInt and envDuration read a default from the environment; a malformed
// value is kept for Validate to report.
func (o *Options) envInt(k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Errorf("environment %s=%q: not a whole number", k, v))
		return def
	}
	return n
}

func (o *Options) envBool(k string, def bool) bool {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Errorf("environment %s=%q: not true or false", k, v))
		return def
	}
	return b
}

func (o *Options) envDuration(k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Errorf("environment %s=%q: not a duration such as 30s or 2m", k, v))
		return def
	}
	return d
}
