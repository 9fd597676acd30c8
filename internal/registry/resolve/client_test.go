package resolve_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

// TestResolveThroughTheClient: manifest and image-index requests go
// through the registry client, so its answers to the registry's failures
// apply to them as to blob fetches: a 429's Retry-After is waited for, a
// 5xx is retried, and a redirect to a host the allowlist does not name is
// refused without reaching it.
func TestResolveThroughTheClient(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}
	for _, tc := range []struct {
		name     string
		status   int // the first manifest GET's answer
		answer   func(w http.ResponseWriter, r *http.Request)
		allow    bool // whether the client has an allowlist naming the registry
		err      error
		minDelay time.Duration
		gets     int // manifest GETs the registry sees
	}{
		{name: "429 with Retry-After: waited for", status: http.StatusTooManyRequests, minDelay: 900 * time.Millisecond, gets: 2},
		{name: "5xx: retried", status: http.StatusBadGateway, gets: 2},
		{name: "redirect to a host not allowed", answer: redirect, allow: true, err: registry.ErrNotAllowed, gets: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var armed atomic.Bool
			var first atomic.Bool
			srv := devregistry.NewTestServer(t, devregistry.WithMiddleware(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if armed.Load() && devregistry.ManifestGets(r) && first.CompareAndSwap(false, true) {
						if tc.answer != nil {
							tc.answer(w, r)
							return
						}
						if tc.status == http.StatusTooManyRequests {
							w.Header().Set("Retry-After", "1")
						}
						w.WriteHeader(tc.status)
						return
					}
					next.ServeHTTP(w, r)
				})
			}))
			l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": []byte("ID=alpine\n")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := devregistry.PushLayers(context.Background(), srv.Ref("org/app:1.0"), l); err != nil {
				t.Fatal(err)
			}
			cfg := registry.Config{RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, MaxRetryAfter: 5 * time.Second}
			if tc.allow {
				cfg.Allowlist = registry.Allowlist{srv.Addr}
			}
			r := resolve.New(resolve.WithClient(registry.New(cfg, registry.WithLogger(slog.New(slog.DiscardHandler)))))
			srv.Counter().Reset()
			armed.Store(true)
			start := time.Now()
			imgs, err := r.Resolve(context.Background(), srv.Ref("org/app:1.0"), "")
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Resolve: %v, want %v", err, tc.err)
				}
			} else if err != nil || len(imgs) != 1 {
				t.Fatalf("Resolve: %v, %v", imgs, err)
			}
			if d := time.Since(start); d < tc.minDelay {
				t.Errorf("resolved in %s, want at least %s", d, tc.minDelay)
			}
			gets := 0
			for _, rq := range srv.Counter().Log() {
				if rq.Class == devregistry.ClassManifests && rq.Method == http.MethodGet {
					gets++
				}
			}
			if gets != tc.gets {
				t.Errorf("%d manifest GETs, want %d", gets, tc.gets)
			}
			if elsewhere.Load() != 0 {
				t.Errorf("the other host got %d requests", elsewhere.Load())
			}
		})
	}
}
