// Command stevedore indexes container images.
//
//	stevedore scan [flags] REF...   index images and print what is inside
//	stevedore serve [flags]         single-node server: embedded JetStream, API, workers
//	stevedore state                 print the scanner-set state of this build
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stevedore-dev/stevedore/pkg/admin"
	"github.com/stevedore-dev/stevedore/pkg/config"
	"github.com/stevedore-dev/stevedore/pkg/enrichment"
	"github.com/stevedore-dev/stevedore/pkg/node"
	"github.com/stevedore-dev/stevedore/pkg/scan"
	"github.com/stevedore-dev/stevedore/pkg/store"
	"github.com/stevedore-dev/stevedore/pkg/telemetry"
)

const usage = `usage: stevedore <command> [flags]

commands:
  scan REF...                       index images and print a summary (or --format json)
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

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var err error
	switch os.Args[1] {
	case "scan":
		err = runScan(ctx, log, os.Args[2:])
	case "serve":
		err = runServe(ctx, log, os.Args[2:])
	case "enrichment", "partial":
		err = runAdmin(ctx, os.Args[1], os.Args[2:])
	case "reindex":
		err = runReindex(ctx, os.Args[2:])
	case "state":
		fmt.Println(node.State(nil))
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "stevedore: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stevedore:", err)
		os.Exit(1)
	}
}

// scanRoles are the settings of stevedore scan: a worker with its own
// embedded JetStream server, whose store is temporary.
func scanRoles() config.Roles { return config.Roles{Worker: true, EmbeddedNATS: true} }

// serveRoles are the settings of stevedore serve: every role, with an
// embedded JetStream server that keeps its queue (pending jobs, scheduled
// retries) across restarts.
func serveRoles() config.Roles {
	return config.Roles{Dispatcher: true, Worker: true, EmbeddedNATS: true, KeepNATSStore: true}
}

func runScan(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("stevedore scan", flag.ExitOnError)
	roles := scanRoles()
	opts := config.Register(fs, roles)
	server := fs.String("server", os.Getenv("STEVEDORE_SERVER"), "a running dispatcher's URL (env STEVEDORE_SERVER); empty: run the pipeline in this process")
	format := fs.String("format", "text", "output: text (summary) or json (IndexReport)")
	platform := fs.String("platform", "", "one platform of a multi-platform image, e.g. linux/amd64 (default: all)")
	top := fs.Int("top", 25, "packages listed in the summary (0: all)")
	timeout := fs.Duration("timeout", 30*time.Minute, "how long to wait for each report")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: stevedore scan [flags] REF...")
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if *format != "text" && *format != "json" {
		return fmt.Errorf("--format: %q: want text or json", *format)
	}
	if *server == "" {
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
	return scan.Run(ctx, scan.Options{
		Server: *server, Node: opts.Config, Platform: *platform, JSON: *format == "json",
		Top: *top, Timeout: *timeout, Logger: log,
	}, fs.Args(), os.Stdout)
}

func runServe(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("stevedore serve", flag.ExitOnError)
	roles := serveRoles()
	opts := config.Register(fs, roles)
	fs.Parse(args)
	if err := opts.Validate(roles); err != nil {
		return err
	}
	if opts.NATSURL == "" {
		log.Info("embedded JetStream store", "dir", opts.NATSStoreDir)
	}
	opts.Logger = log
	return node.RunProcess(ctx, "stevedore", opts.Config, opts.Addr)
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
	pool, err := store.Connect(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch group + " " + sub {
	case "enrichment import":
		if len(rest) != 2 {
			return fmt.Errorf("usage: stevedore enrichment import NAME FILE")
		}
		return admin.ImportEnrichment(ctx, enrichment.NewStore(pool), rest[0], rest[1], os.Stdout)
	case "enrichment status":
		return admin.EnrichmentStatus(ctx, enrichment.NewStore(pool), os.Stdout)
	case "partial list":
		return admin.ListPartial(ctx, store.New(pool), *limit, os.Stdout)
	case "partial retry":
		if len(rest) == 0 {
			return errors.New("partial retry: give one or more manifest digests (stevedore partial retry DIGEST [DIGEST ...])")
		}
		return admin.RetryPartial(ctx, store.New(pool), rest, os.Stdout)
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
	pool, err := store.Connect(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return admin.Reindex(ctx, store.New(pool), digests, *all, *stale, node.State(nil), os.Stdout)
}
