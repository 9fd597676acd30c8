// Command stevedore indexes container images.
//
//	stevedore scan [flags] REF...   index images and print what is inside
//	stevedore serve [flags]         single-node server: embedded JetStream, API, workers
//	stevedore state                 print the scanner-set state of this build
//
// The commands are internal/cli's Main.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/stevedore-dev/stevedore/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
