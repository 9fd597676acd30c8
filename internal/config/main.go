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

// Main is the whole of a single-role binary's main: flags for roles from the
// command line and environment, validated, then the node run until SIGINT or
// SIGTERM, named service in traces. It exits the process with status 1 and
// the reason on failure.
func Main(service string, roles Roles) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := Register(flag.CommandLine, roles)
	flag.Parse()
	err := opts.Validate(roles)
	if err == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		err = app.RunProcess(ctx, service, opts.Config, opts.Addr)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		stop()
		os.Exit(1)
	}
}
