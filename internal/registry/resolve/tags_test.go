package resolve_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

// TestDigest: a tag is looked up with a HEAD, or a GET when the registry's
// HEAD fails; a tag the registry does not have, a malformed reference and
// a registry the client's allowlist refuses are ErrInvalid, and the last
// two send nothing.
func TestDigest(t *testing.T) {
	var headFails atomic.Bool
	srv := devregistry.NewTestServer(t, devregistry.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead && headFails.Load() {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": []byte("ID=alpine\n")})
	if err != nil {
		t.Fatal(err)
	}
	want, err := devregistry.PushLayers(context.Background(), srv.Ref("org/app:1.0"), l)
	if err != nil {
		t.Fatal(err)
	}
	quiet := registry.WithLogger(slog.New(slog.DiscardHandler))
	open := resolve.New(resolve.WithClient(registry.New(registry.Config{}, quiet).WithMaxAttempts(1)))
	allowOther := resolve.New(resolve.WithClient(registry.New(registry.Config{Allowlist: registry.Allowlist{"registry.example.com"}}, quiet)))
	for _, tc := range []struct {
		name      string
		r         *resolve.Resolver
		ref       string
		headFails bool
		err       error // nil: want the digest
		sent      bool  // whether the registry is asked
	}{
		{"HEAD", open, srv.Ref("org/app:1.0"), false, nil, true},
		{"GET when HEAD fails", open, srv.Ref("org/app:1.0"), true, nil, true},
		{"no such tag", open, srv.Ref("org/app:2.0"), false, resolve.ErrInvalid, true},
		{"no such repository", open, srv.Ref("org/none:1.0"), false, resolve.ErrInvalid, true},
		{"malformed", open, srv.Ref("org/../app:1.0"), false, resolve.ErrInvalid, false},
		{"a digest, not a tag", open, srv.Ref("org/app@") + want.String(), false, resolve.ErrInvalid, false},
		{"registry not allowed", allowOther, srv.Ref("org/app:1.0"), false, resolve.ErrRegistryNotAllowed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headFails.Store(tc.headFails)
			srv.Counter().Reset()
			got, err := tc.r.Digest(context.Background(), tc.ref)
			if tc.err == nil && (err != nil || got != want.String()) {
				t.Fatalf("Digest = %q, %v; want %s", got, err, want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("Digest = %q, %v; want %v", got, err, tc.err)
			}
			if sent := len(srv.Counter().Log()) > 0; sent != tc.sent {
				t.Errorf("registry asked: %v, want %v (%+v)", sent, tc.sent, srv.Counter().Log())
			}
		})
	}
	// Resolve checks the allowlist the same way.
	if _, err := allowOther.Resolve(context.Background(), srv.Ref("org/app:1.0"), ""); !errors.Is(err, resolve.ErrRegistryNotAllowed) || !errors.Is(err, registry.ErrNotAllowed) {
		t.Fatalf("Resolve: %v, want ErrRegistryNotAllowed", err)
	}
}
