package config

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/stevedore-dev/stevedore/internal/app"
)

// Main is the whole of a single-role binary's main: Run with the command
// line, until SIGINT or SIGTERM, named service in traces. It exits the
// process with status 1 and the reason on failure.
func Main(service string, roles Roles) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, service, roles, flag.CommandLine, os.Args[1:], slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		stop()
		os.Exit(1)
	}
}

// Run is the start-up of every server process (stevedore serve,
// cmd/dispatcher, cmd/worker): the settings of roles from args on fs and the
// environment, validated, then the app run with those roles until ctx ends
// (app.RunProcess).
func Run(ctx context.Context, service string, roles Roles, fs *flag.FlagSet, args []string, log *slog.Logger) error {
	opts := Register(fs, roles)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := opts.Validate(roles); err != nil {
		return err
	}
	if roles.EmbeddedNATS && opts.NATSURL == "" {
		log.Info("embedded JetStream store", "dir", opts.NATSStoreDir)
	}
	opts.Logger = log
	return app.RunProcess(ctx, service, opts.Config, opts.Addr)
}
