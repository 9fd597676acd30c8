package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/cli/admin"
	"github.com/stevedore-dev/stevedore/internal/cli/localpg"
	"github.com/stevedore-dev/stevedore/internal/config"
	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/telemetry"
)

const usage = `usage: stevedore <command> [flags]

commands:
  scan REF...                       index images and print what is inside (--format table|json|spdx-json|cyclonedx-json);
                                    without a database URL it runs a private PostgreSQL cluster
  serve                             run a single-node server (embedded JetStream, HTTP API, workers)
  state                             print the scanner-set state of this build
  enrichment import NAME FILE       load enrichment data from a file (air-gapped sites)
  enrichment status                 show what enrichment data is loaded, from where, how old
  partial list                      list partial reports: reasons, attempts, next retry
  partial retry DIGEST...           retry partial reports now
  reindex --digest D... | --all | --stale
                                    index reports again now (the running dispatchers' sweep
                                    queues them; only what changed is redone)

The enrichment and partial commands need only the database (--database-url or DATABASE_URL).
`

// Main is the stevedore command line (args without the program name): it
// returns the exit status, 0 on success, 1 with the reason on stderr on
// failure, 2 for a usage error.
func Main(ctx context.Context, args []string, stdout, stderr *os.File) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var err error
	switch args[0] {
	case "scan":
		err = runScan(ctx, args[1:], stdout, stderr)
	case "serve":
		err = runServe(ctx, log, args[1:])
	case "enrichment", "partial":
		err = runAdmin(ctx, args[0], args[1:])
	case "reindex":
		err = runReindex(ctx, args[1:])
	case "state":
		fmt.Fprintln(stdout, app.State(nil))
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "stevedore: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, errUsage) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "stevedore:", err)
		return 1
	}
	return 0
}

// errUsage is returned after a usage error has been printed.
var errUsage = errors.New("usage")

// scanRoles are the settings of stevedore scan: a worker with its own
// embedded JetStream server, whose store is temporary.
func scanRoles() config.Roles { return config.Roles{Worker: true, EmbeddedNATS: true} }

// serveRoles are the settings of stevedore serve: every role, with an
// embedded JetStream server that keeps its queue (pending jobs, scheduled
// retries) across restarts.
func serveRoles() config.Roles {
	return config.Roles{Dispatcher: true, Worker: true, EmbeddedNATS: true, KeepNATSStore: true}
}

// verbosity is -v, counted: each -v raises it by one.
type verbosity int

func (v *verbosity) String() string   { return strconv.Itoa(int(*v)) }
func (v *verbosity) IsBoolFlag() bool { return true }
func (v *verbosity) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	if b {
		*v++
	}
	return nil
}

// logLevel is the level of stevedore scan's logs: warnings and errors by
// default, info with -v, debug with -vv.
func logLevel(v verbosity) slog.Level {
	switch {
	case v >= 2:
		return slog.LevelDebug
	case v == 1:
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

func runScan(ctx context.Context, args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("stevedore scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	roles := scanRoles()
	opts := config.Register(fs, roles)
	server := fs.String("server", os.Getenv("STEVEDORE_SERVER"), "a running dispatcher's URL (env STEVEDORE_SERVER); empty: run the pipeline in this process")
	format := fs.String("format", "table", "output: "+strings.Join(FormatNames(), ", ")+" (json: the IndexReport)")
	output := fs.String("output", "", "write the output to this file instead of stdout")
	fs.StringVar(output, "o", "", "short for --output")
	platform := fs.String("platform", "", "one platform of a multi-platform image, e.g. linux/amd64 (default: all)")
	top := fs.Int("top", 0, "packages listed in the table (0: all)")
	timeout := fs.Duration("timeout", DefaultTimeout, "how long to wait for each report")
	pgDir := fs.String("postgres-dir", os.Getenv("STEVEDORE_POSTGRES_DIR"), "without --database-url: the private PostgreSQL cluster's directory (env STEVEDORE_POSTGRES_DIR; default "+defaultPGDir()+")")
	var verbose verbosity
	fs.Var(&verbose, "v", "more output: -v info logs, -vv (or -v -v) debug logs; default: warnings and errors only")
	vv := fs.Bool("vv", false, "debug logs (same as -v -v)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: stevedore scan [flags] REF...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *vv {
		verbose = 2
	}
	if !slices.Contains(FormatNames(), *format) {
		return fmt.Errorf("--format: %q: want one of %s", *format, strings.Join(FormatNames(), ", "))
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	progress := NewProgress(stderr)
	log := slog.New(slog.NewTextHandler(progress.LogWriter(stderr), &slog.HandlerOptions{Level: logLevel(verbose)}))
	if *server == "" {
		if opts.DatabaseURL == "" {
			c, err := localpg.Ensure(ctx, localpg.Options{Dir: *pgDir})
			if err != nil {
				return fmt.Errorf("no --database-url or DATABASE_URL, and no private PostgreSQL cluster: %w", err)
			}
			fmt.Fprintln(stderr, "stevedore:", c.Message())
			opts.DatabaseURL = c.URL
		}
		if err := opts.Validate(roles); err != nil {
			return err
		}
	}
	tp, shutdown, err := telemetry.Setup(ctx, "stevedore", log)
	if err != nil {
		return err
	}
	defer shutdown(context.Background())
	opts.Logger, opts.TracerProvider = log, tp
	var out bytes.Buffer
	err = Run(ctx, Options{
		Server: *server, Node: opts.Config, Platform: *platform, Format: *format,
		Top: *top, Timeout: *timeout, Logger: log, Progress: progress,
	}, fs.Args(), &out)
	if out.Len() > 0 {
		if werr := writeOutput(*output, stdout, out.Bytes()); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

// writeOutput writes b to stdout, or to the file named (through a
// temporary file renamed into place, so that a failed write leaves no
// half file).
func writeOutput(name string, stdout io.Writer, b []byte) error {
	if name == "" || name == "-" {
		_, err := stdout.Write(b)
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("--output %s: %w", name, err)
	}
	return nil
}

func defaultPGDir() string {
	d, err := localpg.DefaultDir()
	if err != nil {
		return "<user cache dir>/stevedore/postgres"
	}
	return d
}

func runServe(ctx context.Context, log *slog.Logger, args []string) error {
	return config.Run(ctx, "stevedore", serveRoles(), flag.NewFlagSet("stevedore serve", flag.ExitOnError), args, log)
}

func runAdmin(ctx context.Context, group string, args []string) error {
	fs := flag.NewFlagSet("stevedore "+group, flag.ExitOnError)
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "Postgres URL (env DATABASE_URL)")
	limit := fs.Int("limit", 100, "partial list: how many to show")
	fs.Parse(args)
	sub := fs.Arg(0)
	rest := fs.Args()
	if len(rest) > 0 {
		rest = rest[1:]
	}
	pool, err := postgres.Connect(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch group + " " + sub {
	case "enrichment import":
		if len(rest) != 2 {
			return fmt.Errorf("usage: stevedore enrichment import NAME FILE")
		}
		return admin.ImportEnrichment(ctx, enrich.NewStore(postgres.New(pool)), rest[0], rest[1], os.Stdout)
	case "enrichment status":
		return admin.EnrichmentStatus(ctx, enrich.NewStore(postgres.New(pool)), os.Stdout)
	case "partial list":
		return admin.ListPartial(ctx, postgres.New(pool), *limit, os.Stdout)
	case "partial retry":
		if len(rest) == 0 {
			return errors.New("partial retry: give one or more manifest digests (stevedore partial retry DIGEST [DIGEST ...])")
		}
		return admin.RetryPartial(ctx, postgres.New(pool), rest, os.Stdout)
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q (commands above)", "stevedore "+group+" "+sub)
}

func runReindex(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stevedore reindex", flag.ExitOnError)
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "Postgres URL (env DATABASE_URL)")
	var digests []string
	fs.Func("digest", "a manifest digest to re-index (repeatable)", func(v string) error {
		digests = append(digests, v)
		return nil
	})
	all := fs.Bool("all", false, "re-index every finished report")
	stale := fs.Bool("stale", false, "re-index now every report made by an older scanner set")
	fs.Parse(args)
	pool, err := postgres.Connect(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return admin.Reindex(ctx, postgres.New(pool), digests, *all, *stale, app.State(nil), os.Stdout)
}
