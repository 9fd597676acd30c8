package fetch_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

// headerLog records the headers of the requests a server got.
type headerLog struct {
	mu   sync.Mutex
	reqs []http.Header
}

func (l *headerLog) add(h http.Header) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, h.Clone())
}

func (l *headerLog) all() []http.Header {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]http.Header(nil), l.reqs...)
}

// redirectRig is a registry that redirects blob GETs to target (or serves
// the blob itself at /same-host) and a storage host that serves the blob,
// each logging the headers of the requests it gets.
type redirectRig struct {
	blob               []byte
	reg, storage       *httptest.Server
	regLog, storageLog headerLog
	target             atomic.Value // where the registry redirects blob GETs
}

func newRedirectRig(t *testing.T, blob []byte) *redirectRig {
	rig := &redirectRig{blob: blob}
	rig.storage = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rig.storageLog.add(r.Header)
		w.Write(blob)
	}))
	t.Cleanup(rig.storage.Close)
	rig.reg = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rig.regLog.add(r.Header)
		if r.URL.Path == "/same-host" {
			w.Write(blob)
			return
		}
		http.Redirect(w, r, rig.target.Load().(string), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(rig.reg.Close)
	return rig
}

func TestRedirectsAreCheckedHopByHop(t *testing.T) {
	blob := []byte("layer bytes")
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
	pg := devregistry.NewTCPCounter(t)
	rig := newRedirectRig(t, blob)
	storage, reg := rig.storage, rig.reg
	storageHost := strings.TrimPrefix(storage.URL, "http://")
	regHost := strings.TrimPrefix(reg.URL, "http://")

	layer := &report.Layer{Hash: report.Digest(digest), URI: reg.URL + "/v2/app/blobs/" + digest,
		Headers: http.Header{"Authorization": {"Bearer secret-token"}, "X-Custom": {"secret-custom"}}}

	for _, tc := range []struct {
		name     string
		cfg      registry.Config
		target   string
		ok       bool
		sameHost bool
	}{
		{"allowlist: to postgres", registry.Config{Allowlist: registry.Allowlist{regHost}}, fmt.Sprintf("http://127.0.0.1:%d/", pg.Port()), false, false},
		{"no allowlist: to postgres", registry.Config{}, fmt.Sprintf("http://127.0.0.1:%d/", pg.Port()), false, false},
		{"no allowlist: to a name resolving to loopback", registry.Config{}, fmt.Sprintf("http://localhost:%d/", pg.Port()), false, false},
		{"no allowlist: to the metadata service", registry.Config{}, "http://169.254.169.254/latest/meta-data/", false, false},
		{"no allowlist: to a private address", registry.Config{}, "http://10.0.0.1:5432/", false, false},
		{"allowlist: to storage not allowed", registry.Config{Allowlist: registry.Allowlist{regHost}}, storage.URL + "/bucket/blob?sig=x", false, false},
		{"allowlist: to an allowed storage host", registry.Config{Allowlist: registry.Allowlist{regHost}, RedirectHosts: registry.RedirectHosts{storageHost}}, storage.URL + "/bucket/blob?sig=x", true, false},
		{"no allowlist: to an allowed storage host", registry.Config{RedirectHosts: registry.RedirectHosts{"127.0.0.1"}}, storage.URL + "/bucket/blob?sig=x", true, false},
		{"same host", registry.Config{Allowlist: registry.Allowlist{regHost}}, reg.URL + "/same-host", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig.target.Store(tc.target)
			before := len(rig.storageLog.all())
			regBefore := len(rig.regLog.all())
			f := fetch.New(fetch.WithClient(fast(tc.cfg)), fetch.WithLogger(quiet))
			got, err := readAll(t, f, layer)
			if n := pg.Conns(); n != 0 {
				t.Fatalf("the postgres stand-in got %d connections", n)
			}
			if !tc.ok {
				if err == nil || !errors.Is(err, fetch.ErrPermanent) || !errors.Is(err, registry.ErrNotAllowed) {
					t.Fatalf("got %v, want a permanent ErrNotAllowed", err)
				}
				if len(rig.storageLog.all()) != before {
					t.Fatal("the storage host was asked")
				}
				return
			}
			if err != nil || string(got) != string(blob) {
				t.Fatalf("got %q, %v", got, err)
			}
			rig.checkForwarded(t, regBefore, before, tc.sameHost)
		})
	}
}

// checkForwarded checks the requests since regBefore and storageBefore:
// every request to the registry had the layer's headers, and, unless the
// registry served the blob itself, storage was asked once, without them.
func (rig *redirectRig) checkForwarded(t *testing.T, regBefore, storageBefore int, sameHost bool) {
	t.Helper()
	for _, h := range rig.regLog.all()[regBefore:] {
		if h.Get("Authorization") != "Bearer secret-token" || h.Get("X-Custom") != "secret-custom" {
			t.Fatalf("the registry did not get the layer's headers: %v", h)
		}
	}
	if sameHost {
		return
	}
	reqs := rig.storageLog.all()[storageBefore:]
	if len(reqs) != 1 {
		t.Fatalf("storage asked %d times", len(reqs))
	}
	if a, c := reqs[0].Get("Authorization"), reqs[0].Get("X-Custom"); a != "" || c != "" {
		t.Fatalf("storage got Authorization %q and X-Custom %q", a, c)
	}
}

func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"93.184.216.34:443", true},
		{"[2606:2800:220:1:248:1893:25c8:1946]:443", true},
		{"127.0.0.1:5432", false},
		{"127.8.9.1:80", false},
		{"[::1]:5432", false},
		{"10.1.2.3:80", false},
		{"172.16.0.1:80", false},
		{"192.168.1.1:80", false},
		{"169.254.169.254:80", false},
		{"169.254.1.1:80", false},
		{"[fd00:ec2::254]:80", false},
		{"[fe80::1]:80", false},
		{"[::ffff:127.0.0.1]:80", false},
		{"[::ffff:169.254.169.254]:80", false},
		{"0.0.0.0:80", false},
		{"[::]:80", false},
		{"224.0.0.1:80", false},
		{"100.64.0.1:80", false},
		{"100.100.100.200:80", false},
	} {
		err := registry.CheckAddress(tc.addr)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, registry.ErrNotAllowed) {
			t.Errorf("CheckAddress(%s) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

// A registry's auth challenge may name a token realm on another host:
// with an allowlist, that host may not be a private address either.
func TestTokenRealmOnAPrivateAddressIsRefused(t *testing.T) {
	pg := devregistry.NewTCPCounter(t)
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://localhost:%d/token",service="reg"`, pg.Port()))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer reg.Close()
	regHost := strings.TrimPrefix(reg.URL, "http://")
	d := "sha256:" + strings.Repeat("a", 64)
	f := fetch.New(fetch.WithClient(fast(registry.Config{Allowlist: registry.Allowlist{regHost}})), fetch.WithLogger(quiet))
	_, err := readAll(t, f, &report.Layer{Hash: report.Digest(d), URI: reg.URL + "/v2/app/blobs/" + d})
	if !errors.Is(err, registry.ErrNotAllowed) || !errors.Is(err, fetch.ErrPermanent) {
		t.Fatalf("got %v, want a permanent ErrNotAllowed", err)
	}
	if n := pg.Conns(); n != 0 {
		t.Fatalf("the postgres stand-in got %d connections", n)
	}
}
