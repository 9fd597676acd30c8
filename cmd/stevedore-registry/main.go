// Command stevedore-registry runs an in-memory OCI registry for development
// and demos, optionally pushing images made from rootfs tarballs into it:
//
//	stevedore-registry --addr 127.0.0.1:5001 --push debian:bookworm=rootfs.tar.gz
//
// Each --push NAME:TAG=FILE[,FILE...] makes one image with one layer per
// file. It logs the pushed digests, then "ready", and serves until SIGINT or
// SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

type pushList []string

func (p *pushList) String() string { return strings.Join(*p, " ") }

func (p *pushList) Set(v string) error {
	name, files, ok := strings.Cut(v, "=")
	if !ok || name == "" || files == "" {
		return errors.New("want NAME:TAG=ROOTFS.tar.gz[,MORE.tar.gz]")
	}
	*p = append(*p, v)
	return nil
}

func main() {
	if err := run(); err != nil {
		slog.Error("stevedore-registry failed", "err", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		addr    = flag.String("addr", "127.0.0.1:5001", "address to listen on (port 0 picks a free one)")
		blobDir = flag.String("blob-dir", "", "keep blobs in this directory instead of memory")
		verbose = flag.Bool("v", false, "log every request")
		pushes  pushList
	)
	flag.Var(&pushes, "push", "push an image: NAME:TAG=ROOTFS.tar.gz[,LAYER2.tar.gz...] (repeatable)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(logger)

	var opts []devregistry.Option
	if *verbose {
		opts = append(opts, devregistry.WithLogger(slog.NewLogLogger(logger.Handler(), slog.LevelInfo)))
	}
	if *blobDir != "" {
		opts = append(opts, devregistry.WithBlobDir(*blobDir))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv, err := devregistry.New(opts...).Start(ctx, *addr)
	if err != nil {
		return err
	}
	defer srv.Close()

	// Push through loopback even when listening on every interface.
	_, port, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", srv.Addr, err)
	}
	local := net.JoinHostPort("127.0.0.1", port)
	for _, p := range pushes {
		name, files, _ := strings.Cut(p, "=")
		ref := local + "/" + name
		slog.Info("pushing", "ref", ref, "layers", files)
		d, err := devregistry.PushRootfs(ctx, ref, strings.Split(files, ",")...)
		if err != nil {
			return fmt.Errorf("push %s: %w", name, err)
		}
		slog.Info("pushed", "ref", ref, "digest", d.String())
	}

	slog.Info("ready", "addr", srv.Addr, "url", srv.URL())
	<-ctx.Done()
	slog.Info("stopping")
	return srv.Close()
}
