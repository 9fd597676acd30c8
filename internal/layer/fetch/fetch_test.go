package fetch_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/layer/blobcache"
	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

var quiet = slog.New(slog.DiscardHandler)

// fast is a registry client configuration that retries quickly.
func fast(cfg registry.Config) *registry.Client {
	cfg.RetryBase, cfg.RetryMax, cfg.MaxAttempts = 5*time.Millisecond, 20*time.Millisecond, 3
	return registry.New(cfg, registry.WithLogger(quiet))
}

// pushLayer pushes an image of one layer to srv as repo:1 and returns the
// layer, its bytes and its report.Layer.
func pushLayer(t *testing.T, srv *devregistry.Server, repo, content string) (v1.Layer, []byte, *report.Layer) {
	t.Helper()
	l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": []byte(content)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devregistry.PushLayers(context.Background(), srv.Ref(repo+":1"), l); err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	size, _ := l.Size()
	rc, _ := l.Compressed()
	b, _ := io.ReadAll(rc)
	r, _ := name.NewRepository(srv.Addr + "/" + repo)
	return l, b, &report.Layer{Hash: report.Digest(d.String()), URI: resolve.BlobURL(r, d.String()), Size: size}
}

func readAll(t *testing.T, f *fetch.Fetcher, l *report.Layer) ([]byte, error) {
	t.Helper()
	rc, err := f.Open(context.Background(), l)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	srv := devregistry.NewTestServer(t, devregistry.WithMiddleware(devregistry.Fail(http.StatusInternalServerError, -1, func(r *http.Request) bool {
		return strings.HasSuffix(r.URL.Path, "/blobs/sha256:"+strings.Repeat("5", 64))
	})))
	_, wantBytes, lyr := pushLayer(t, srv, "app", "ID=x\n")
	repo, _ := name.NewRepository(srv.Addr + "/app")
	f := fetch.New(fetch.WithClient(fast(registry.Config{})), fetch.WithLogger(quiet))

	got, err := readAll(t, f, lyr)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(wantBytes) {
		t.Fatalf("got %d bytes, want the %d of the blob", len(got), len(wantBytes))
	}

	other := "sha256:" + strings.Repeat("5", 64)
	d := string(lyr.Hash)
	for _, tc := range []struct {
		name      string
		f         *fetch.Fetcher
		layer     *report.Layer
		permanent bool
		want      string
	}{
		{"uri names another blob", f, &report.Layer{Hash: report.Digest(other), URI: resolve.BlobURL(repo, d)}, true, "names blob"},
		{"blob not found", f, &report.Layer{Hash: report.Digest("sha256:" + strings.Repeat("4", 64)), URI: resolve.BlobURL(repo, "sha256:"+strings.Repeat("4", 64))}, true, "404"},
		{"registry unavailable", f, &report.Layer{Hash: report.Digest(other), URI: resolve.BlobURL(repo, other)}, false, "500"},
		{"not http", f, &report.Layer{Hash: report.Digest(other), URI: "ftp://x/y"}, true, "not an absolute http"},
		{"connection refused", f, &report.Layer{Hash: report.Digest(other), URI: "http://127.0.0.1:1/v2/x/blobs/" + other}, false, "connect"},
		{"registry not allowed", fetch.New(fetch.WithClient(fast(registry.Config{Allowlist: registry.Allowlist{"registry.example.com"}}))),
			&report.Layer{Hash: lyr.Hash, URI: lyr.URI}, true, "not in the allowlist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := tc.f.Open(ctx, tc.layer)
			if err == nil {
				rc.Close()
				t.Fatal("no error")
			}
			if errors.Is(err, fetch.ErrPermanent) != tc.permanent || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (permanent %v), want permanent=%v with %q", err, errors.Is(err, fetch.ErrPermanent), tc.permanent, tc.want)
			}
		})
	}
}

func TestRetriesThenSuccess(t *testing.T) {
	var digest string
	srv := devregistry.NewTestServer(t, devregistry.WithMiddleware(devregistry.Fail(http.StatusBadGateway, 2, func(r *http.Request) bool {
		return devregistry.BlobGet(digest)(r)
	})))
	_, want, lyr := pushLayer(t, srv, "flaky", "ID=flaky\n")
	digest = string(lyr.Hash)
	srv.Counter().Reset()
	got, err := readAll(t, fetch.New(fetch.WithClient(fast(registry.Config{MaxAttempts: 5}))), lyr)
	if err != nil || string(got) != string(want) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	var statuses []int
	for _, r := range srv.Counter().Log() {
		if r.Class == devregistry.ClassBlobs {
			statuses = append(statuses, r.Status)
		}
	}
	if len(statuses) != 3 || statuses[0] != 502 || statuses[1] != 502 || statuses[2] != 200 {
		t.Fatalf("blob GET statuses %v, want [502 502 200]", statuses)
	}
}

// counters reads the metrics of a manual reader.
func counters(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					out[m.Name] += dp.Value
				}
			}
		}
	}
	return out
}

func TestCache(t *testing.T) {
	srv := devregistry.NewTestServer(t)
	_, want, lyr := pushLayer(t, srv, "cached", "ID=cached\n")
	cache, err := blobcache.Open(blobcache.Options{Dir: t.TempDir(), MaxBytes: 1 << 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	f := fetch.New(fetch.WithCache(cache), fetch.WithMeterProvider(mp), fetch.WithLogger(quiet),
		fetch.WithClient(registry.New(registry.Config{}, registry.WithMeterProvider(mp))))
	srv.Counter().Reset()

	type step struct {
		name        string
		damage      bool
		wantErr     error
		wantFetches int // registry blob GETs so far
		wantCached  bool
	}
	for _, s := range []step{
		{name: "miss: fetched and cached", wantFetches: 1, wantCached: true},
		{name: "hit: not fetched", wantFetches: 1, wantCached: true},
		{name: "tampered copy: caught and removed", damage: true, wantErr: fetch.ErrCacheCorrupt, wantFetches: 1, wantCached: false},
		{name: "fetched again and cached again", wantFetches: 2, wantCached: true},
		{name: "hit again", wantFetches: 2, wantCached: true},
	} {
		if s.damage {
			b, _ := os.ReadFile(cache.Path(lyr.Hash))
			b[len(b)-10] ^= 0x55
			os.WriteFile(cache.Path(lyr.Hash), b, 0o600)
		}
		got, err := readAll(t, f, lyr)
		switch {
		case s.wantErr != nil && !errors.Is(err, s.wantErr):
			t.Fatalf("%s: error %v, want %v", s.name, err, s.wantErr)
		case s.wantErr == nil && (err != nil || string(got) != string(want)):
			t.Fatalf("%s: %d bytes, %v", s.name, len(got), err)
		}
		if n := srv.Counter().BlobFetches(string(lyr.Hash)); n != s.wantFetches {
			t.Fatalf("%s: %d registry fetches, want %d", s.name, n, s.wantFetches)
		}
		if cache.Contains(lyr.Hash) != s.wantCached {
			t.Fatalf("%s: cached %v", s.name, cache.Contains(lyr.Hash))
		}
	}
	// A cached copy is served by a reader that checks it against its
	// digest, so layer.Read does not hash it a second time.
	rc, err := f.Open(context.Background(), lyr)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := rc.(layer.Verifier); !ok || v.VerifiedDigest() != lyr.Hash {
		t.Errorf("the cached copy's reader %T is not a layers.Verifier of %s", rc, lyr.Hash)
	}
	rc.Close()
	m := counters(t, reader)
	if m["stevedore.blobcache.hits"] != 4 || m["stevedore.blobcache.misses"] != 2 || m["stevedore.blobcache.verify_failures"] != 1 {
		t.Fatalf("metrics %v, want 4 hits, 2 misses, 1 verify failure", m)
	}
	if m["stevedore.registry.bytes"] < 2*int64(len(want)) {
		t.Fatalf("registry bytes %d, want at least the two fetches' %d", m["stevedore.registry.bytes"], 2*len(want))
	}
}

func TestMirrors(t *testing.T) {
	origin := devregistry.NewTestServer(t)
	mirror := devregistry.NewTestServer(t)
	empty := devregistry.NewTestServer(t)
	l, want, lyr := pushLayer(t, origin, "lib/app", "ID=mirrored\n")
	if _, err := devregistry.PushLayers(context.Background(), mirror.Ref("lib/app:1"), l); err != nil {
		t.Fatal(err)
	}
	_, _, other := pushLayer(t, origin, "lib/other", "ID=origin-only\n")
	origin.Counter().Reset()
	mirror.Counter().Reset()
	c := fast(registry.Config{Hosts: map[string]registry.Host{origin.Addr: {Mirrors: []string{empty.URL(), mirror.URL()}}}})
	f := fetch.New(fetch.WithClient(c), fetch.WithLogger(quiet))
	got, err := readAll(t, f, lyr)
	if err != nil || string(got) != string(want) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	if origin.Counter().BlobBytes() != 0 || mirror.Counter().BlobFetches(string(lyr.Hash)) != 1 {
		t.Fatalf("origin served %d bytes, mirror %d fetches: want the mirror only", origin.Counter().BlobBytes(), mirror.Counter().BlobFetches(string(lyr.Hash)))
	}
	// A blob no mirror has comes from the origin.
	if _, err := readAll(t, f, other); err != nil {
		t.Fatal(err)
	}
	if origin.Counter().BlobFetches(string(other.Hash)) != 1 {
		t.Fatal("a blob missing from the mirrors was not fetched from the origin")
	}
}

// basicAuth is a registry middleware that wants basic credentials.
func basicAuth(user, pass string) devregistry.Middleware {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != want {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestCredentialsPerRegistry(t *testing.T) {
	var open bool
	srv := devregistry.NewTestServer(t, devregistry.WithMiddleware(func(next http.Handler) http.Handler {
		guarded := basicAuth("robot", "s3cret")(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if open { // while pushing
				next.ServeHTTP(w, r)
				return
			}
			guarded.ServeHTTP(w, r)
		})
	}))
	open = true
	_, want, lyr := pushLayer(t, srv, "private", "ID=private\n")
	open = false
	if _, err := readAll(t, fetch.New(fetch.WithClient(fast(registry.Config{}))), lyr); !errors.Is(err, fetch.ErrPermanent) {
		t.Fatalf("without credentials: %v, want a permanent error", err)
	}
	c := fast(registry.Config{Hosts: map[string]registry.Host{srv.Addr: {Username: "robot", Password: "s3cret"}}})
	got, err := readAll(t, fetch.New(fetch.WithClient(c)), lyr)
	if err != nil || string(got) != string(want) {
		t.Fatalf("with credentials: %d bytes, %v", len(got), err)
	}
}

// bearerAuth guards a registry the way Docker Hub and most registries do: a
// request without the token is answered 401 with a Bearer challenge whose
// realm is the token endpoint /token on the same host, which hands out tok.
// It counts the pings (GET /v2/) and the token requests.
func bearerAuth(tok string, pings, tokens *atomic.Int64) devregistry.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/token":
				tokens.Add(1)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"token": %q}`, tok)
				return
			case r.URL.Path == "/v2/":
				pings.Add(1)
			}
			if r.Header.Get("Authorization") != "Bearer "+tok {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, r.Host))
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// The layers of one repository share one auth handshake (a ping and a
// token); another repository, whose token has another scope, gets its own.
func TestAuthHandshakeReused(t *testing.T) {
	var pings, tokens atomic.Int64
	var open atomic.Bool
	srv := devregistry.NewTestServer(t, devregistry.WithMiddleware(func(next http.Handler) http.Handler {
		guarded := bearerAuth("t0ken", &pings, &tokens)(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if open.Load() { // while pushing
				next.ServeHTTP(w, r)
				return
			}
			guarded.ServeHTTP(w, r)
		})
	}))
	open.Store(true)
	var app []*report.Layer
	for i := range 3 {
		_, _, l := pushLayer(t, srv, "app", fmt.Sprintf("ID=app%d\n", i))
		app = append(app, l)
	}
	_, _, other := pushLayer(t, srv, "other", "ID=other\n")
	open.Store(false)

	f := fetch.New(fetch.WithClient(fast(registry.Config{})), fetch.WithLogger(quiet))
	for _, l := range app {
		if _, err := readAll(t, f, l); err != nil {
			t.Fatal(err)
		}
	}
	if pings.Load() != 1 || tokens.Load() != 1 {
		t.Errorf("3 layers of one repository: %d pings and %d token requests, want 1 and 1", pings.Load(), tokens.Load())
	}
	if _, err := readAll(t, f, other); err != nil {
		t.Fatal(err)
	}
	if tokens.Load() != 2 {
		t.Errorf("a second repository: %d token requests in all, want 2", tokens.Load())
	}
	// A new fetcher (another process) answers the challenge again.
	if _, err := readAll(t, fetch.New(fetch.WithClient(fast(registry.Config{})), fetch.WithLogger(quiet)), app[0]); err != nil {
		t.Fatal(err)
	}
	if tokens.Load() != 3 {
		t.Errorf("a new fetcher: %d token requests in all, want 3", tokens.Load())
	}
}
