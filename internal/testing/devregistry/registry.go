// Package devregistry runs an OCI registry in process for tests and for the
// development command stevedore-registry. It wraps go-containerregistry's
// in-memory registry with a Counter (requests, blob bytes served) and with
// hooks to inject failures, and it builds and pushes images made from rootfs
// tarballs or from in-memory files.
package devregistry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Middleware wraps a handler; see WithMiddleware.
type Middleware func(http.Handler) http.Handler

// Option configures a Registry.
type Option func(*config)

type config struct {
	middleware []Middleware
	logger     *log.Logger
	blobs      registry.BlobHandler
}

// WithMiddleware wraps the registry's handler, inside the Counter (so the
// Counter sees what the middleware answers). Several are applied in order:
// the first one given sees the request first. Use it to inject failures; see
// Fail.
func WithMiddleware(m Middleware) Option {
	return func(c *config) { c.middleware = append(c.middleware, m) }
}

// WithLogger sends go-containerregistry's per-request log lines to l. The
// default discards them.
func WithLogger(l *log.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithBlobDir stores blobs as files under dir instead of in memory, for large
// images. A blob's digest is checked when it is uploaded, not again when it
// is served.
func WithBlobDir(dir string) Option {
	return func(c *config) { c.blobs = newDiskBlobs(dir) }
}

// Registry is an in-process OCI registry with a request Counter.
type Registry struct {
	counter *Counter
	handler http.Handler
}

// New returns a Registry. It serves nothing until Start, NewTestServer or
// Handler puts it behind a server.
func New(opts ...Option) *Registry {
	cfg := config{logger: log.New(io.Discard, "", 0)}
	for _, o := range opts {
		o(&cfg)
	}
	ropts := []registry.Option{registry.Logger(cfg.logger)}
	if cfg.blobs != nil {
		ropts = append(ropts, registry.WithBlobHandler(cfg.blobs))
	}
	h := registry.New(ropts...)
	for i := len(cfg.middleware) - 1; i >= 0; i-- {
		h = cfg.middleware[i](h)
	}
	c := &Counter{}
	return &Registry{counter: c, handler: c.Wrap(h)}
}

// Counter returns the registry's request counter.
func (r *Registry) Counter() *Counter { return r.counter }

// Handler returns the registry's HTTP handler, counter and middleware
// included. Mount it at the site root.
func (r *Registry) Handler() http.Handler { return r.handler }

// Server is a running Registry.
type Server struct {
	// Addr is the host:port the registry listens on; an image reference is
	// Addr + "/" + repository + ":" + tag (see Ref).
	Addr     string
	Registry *Registry

	close func() error
	once  sync.Once
	err   error
}

// Counter returns the counter of the server's registry.
func (s *Server) Counter() *Counter { return s.Registry.Counter() }

// URL returns the registry's base URL, http://host:port.
func (s *Server) URL() string { return "http://" + s.Addr }

// Ref returns an image reference in this registry: Ref("debian:bookworm")
// is "127.0.0.1:PORT/debian:bookworm".
func (s *Server) Ref(repoAndTag string) string { return s.Addr + "/" + repoAndTag }

// Close stops the server. It is safe to call more than once.
func (s *Server) Close() error {
	s.once.Do(func() { s.err = s.close() })
	return s.err
}

// Start serves the registry on addr ("127.0.0.1:0" picks a free port) until
// ctx ends or Close is called.
func (r *Registry) Start(ctx context.Context, addr string) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devregistry: listen on %s: %w", addr, err)
	}
	return r.Serve(ctx, ln), nil
}

// Serve serves the registry on ln until ctx ends or Close is called.
func (r *Registry) Serve(ctx context.Context, ln net.Listener) *Server {
	hs := &http.Server{Handler: r.handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	var serveErr atomic.Value
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr.Store(err)
		}
	}()
	s := &Server{Addr: ln.Addr().String(), Registry: r}
	stopWatch := make(chan struct{})
	s.close = func() error {
		close(stopWatch)
		// Shutdown waits for requests in flight; a connection that a
		// client dialed but never used counts as busy for 5 s, so give up
		// waiting after a short while and close what is left.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		if serr := hs.Shutdown(sctx); serr != nil {
			err = hs.Close()
			if !errors.Is(serr, context.DeadlineExceeded) {
				err = errors.Join(serr, err)
			}
		}
		<-done
		if e, ok := serveErr.Load().(error); ok {
			err = errors.Join(err, e)
		}
		if err != nil {
			return fmt.Errorf("devregistry: stop server: %w", err)
		}
		return nil
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-stopWatch:
		}
	}()
	return s
}

// NewTestServer starts a registry made with opts on a loopback port and
// closes it when the test ends.
func NewTestServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	r := New(opts...)
	ts := httptest.NewServer(r.handler)
	s := &Server{
		Addr:     ts.Listener.Addr().String(),
		Registry: r,
		close:    func() error { ts.Close(); return nil },
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
