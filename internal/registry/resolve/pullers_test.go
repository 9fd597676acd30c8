package resolve_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

// TestLookupsReuseTheTransport: the lookups of a repository answer the
// registry's /v2/ challenge once, not once each; another repository
// answers its own, and a failed lookup drops its repository's transport.
func TestLookupsReuseTheTransport(t *testing.T) {
	ctx := context.Background()
	var failing atomic.Bool
	srv := devregistry.NewTestServer(t, devregistry.WithMiddleware(devregistry.Fail(http.StatusNotFound, -1, func(r *http.Request) bool {
		return failing.Load() && devregistry.ManifestGets(r)
	})))
	for _, repo := range []string{"org/a:1", "org/b:1"} {
		l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": []byte("ID=" + repo + "\n")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := devregistry.PushLayers(ctx, srv.Ref(repo), l); err != nil {
			t.Fatal(err)
		}
	}
	r := resolve.New()
	srv.Counter().Reset()
	steps := []struct {
		name  string
		ref   string
		fail  bool
		pings int // /v2/ requests so far
	}{
		{"first lookup of a", "org/a:1", false, 1},
		{"second lookup of a", "org/a:1", false, 1},
		{"tag lookup of a", "org/a:1", false, 1},
		{"first lookup of b", "org/b:1", false, 2},
		{"failed lookup of a", "org/a:1", true, 2},
		{"lookup of a after the failure", "org/a:1", false, 3},
		{"next lookup of a", "org/a:1", false, 3},
	}
	for _, s := range steps {
		failing.Store(s.fail)
		var err error
		if s.name == "tag lookup of a" {
			_, err = r.Digest(ctx, srv.Ref(s.ref))
		} else {
			_, err = r.Resolve(ctx, srv.Ref(s.ref), "")
		}
		if (err != nil) != s.fail {
			t.Fatalf("%s: error %v, want failure %v", s.name, err, s.fail)
		}
		if got := srv.Counter().Requests(devregistry.ClassBase); got != s.pings {
			t.Fatalf("%s: %d requests to /v2/ so far, want %d", s.name, got, s.pings)
		}
	}
}

// TestLookupsConcurrent: lookups of a repository at once, with and
// without its transport kept, all succeed.
func TestLookupsConcurrent(t *testing.T) {
	ctx := context.Background()
	srv := devregistry.NewTestServer(t)
	l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": []byte("ID=x\n")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devregistry.PushLayers(ctx, srv.Ref("org/c:1"), l); err != nil {
		t.Fatal(err)
	}
	r := resolve.New()
	errs := make(chan error, 16)
	for i := range cap(errs) {
		go func() {
			if i%2 == 0 {
				_, err := r.Resolve(ctx, srv.Ref("org/c:1"), "")
				errs <- err
				return
			}
			_, err := r.Digest(ctx, srv.Ref("org/c:1"))
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
