package resolve_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

// A reference whose repository climbs out of /v2/ is refused before any
// request reaches the registry.
func TestResolveRefusesDotDotRepositories(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := devregistry.NewTestServer(t, devregistry.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths = append(paths, r.URL.Path)
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}))
	r := resolve.New()
	for _, ref := range []string{
		srv.Addr + "/../../x:1",
		srv.Addr + "/a/../b:1",
		srv.Addr + "/./a:1",
		srv.Addr + "/a//b:1",
		srv.Addr + "/a..b:1",
		srv.Addr + "/-a:1",
		srv.Addr + "/../x@sha256:" + strings.Repeat("a", 64),
	} {
		t.Run(ref, func(t *testing.T) {
			_, err := r.Resolve(context.Background(), ref, "")
			if !errors.Is(err, resolve.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 0 {
		t.Fatalf("the registry was asked %q", paths)
	}
}
