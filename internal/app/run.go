package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/telemetry"
)

// Run runs the node's background work until ctx ends: the workers (worker
// role); the campaign for the leadership of the background work, and that
// work while this node leads it (dispatcher role).
func (n *Node) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if n.Worker != nil {
		g.Go(func() error { return n.Worker.Run(ctx) })
	}
	if n.Elector != nil {
		g.Go(func() error { return n.Elector.Run(ctx) })
	}
	g.Go(func() error { <-ctx.Done(); return nil })
	return g.Wait()
}

// Close releases everything Start opened.
func (n *Node) Close() {
	n.dropTemporaryConsumer()
	if n.nc != nil {
		n.nc.Drain()
		n.nc.Close()
	}
	if n.embedded != nil {
		n.embedded.Shutdown()
		n.embedded.WaitForShutdown()
	}
	if n.tempDir != "" {
		os.RemoveAll(n.tempDir)
	}
	if n.Store != nil && n.ownPool {
		n.Store.Pool().Close()
	}
	if n.BlobCache != nil {
		n.BlobCache.Close()
	}
}

// Serve runs the node until ctx ends: the HTTP API on addr (with the
// dispatcher role) and Run.
func (n *Node) Serve(ctx context.Context, addr string) error {
	errc := make(chan error, 1)
	var srv *http.Server
	if n.Handler != nil {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("HTTP API: %w", err)
		}
		srv = NewHTTPServer(n.Handler, n.httpTimeouts)
		n.log.Info("HTTP API listening", "addr", ln.Addr().String())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("HTTP API on %s: %w", addr, err)
			}
		}()
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runc := make(chan error, 1)
	go func() { runc <- n.Run(wctx) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	case err = <-runc:
		runc = nil
	}
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	}
	cancel()
	// Wait for the workers and the background work to stop, so that the
	// leadership is given up before Close closes the database pool.
	if runc != nil {
		if rerr := <-runc; err == nil {
			err = rerr
		}
	}
	return err
}

// RunProcess is a binary's whole life: tracing and metrics from the OTEL_*
// environment (named service), Start, Serve on addr until ctx ends, Close.
func RunProcess(ctx context.Context, service string, cfg Config, addr string) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tp, shutdown, err := telemetry.Setup(ctx, service, cfg.Logger)
	if err != nil {
		return err
	}
	defer shutdown(context.Background())
	mp, mshutdown, err := telemetry.SetupMetrics(ctx, service, cfg.Logger)
	if err != nil {
		return err
	}
	defer mshutdown(context.Background())
	cfg.TracerProvider, cfg.MeterProvider = tp, mp
	n, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Serve(ctx, addr)
}

// dropTemporaryConsumer deletes the workers' consumer from an embedded
// server whose store is temporary (stevedore scan), before the server shuts
// down: a consumer with a pull request still pending (the workers' last
// one, kept by the server until it expires) makes the server's shutdown
// signal it and then sleep 50 ms, a fifth of a scan of an indexed image.
// The store is removed right after, consumer and all.
func (n *Node) dropTemporaryConsumer() {
	if n.embedded == nil || n.tempDir == "" || n.JS == nil || n.Worker == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.JS.DeleteConsumer(ctx, queue.DefaultStream, queue.DefaultConsumer); err != nil {
		n.log.Debug("delete the workers' consumer of the temporary job stream", "error", err)
	}
}
