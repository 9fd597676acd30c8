package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/stevedore-dev/stevedore/internal/registry"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2", 2 * time.Second, true},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"99999999999999999999999", 366 * 24 * time.Hour, true},
		{"Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second, true},
		{"Saturday, 01-Mar-25 12:01:00 GMT", time.Minute, true}, // RFC 850
		{"Sat Mar  1 12:00:05 2025", 5 * time.Second, true},     // asctime
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0, true},              // in the past
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"2s", 0, false},
		{"soon", 0, false},
		{"Sat, 01 Mar 2025 12:00:30", 0, false},
		{"+3", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := registry.ParseRetryAfter(tc.in, now)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"2", "Sat, 01 Mar 2025 12:00:30 GMT", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := registry.ParseRetryAfter(s, time.Now())
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %s, %v", s, d, ok)
		}
	})
}

func TestAllowlist(t *testing.T) {
	var a registry.Allowlist
	if !a.Allows("anything.example") {
		t.Fatal("an empty allowlist refuses a host")
	}
	if err := a.Set("registry.example.com:5000, docker.io"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"registry.example.com:5000", true},
		{"REGISTRY.example.com:5000", true},
		{"registry.example.com", false},
		{"index.docker.io", true},
		{"registry-1.docker.io", true},
		{"ghcr.io", false},
	} {
		if got := a.Allows(tc.host); got != tc.want {
			t.Errorf("Allows(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
	for _, bad := range []string{"https://x.example", "x.example/path", "user@x.example", "x y"} {
		var b registry.Allowlist
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q): no error", bad)
		}
	}
}

func TestParseHosts(t *testing.T) {
	hosts, err := registry.ParseHosts([]byte(`{"r.example": {"username": "u", "password": "p", "mirrors": ["https://m.example"], "concurrency": 2},
		"ghcr.io": {"token": "t"}, "lab:5000": {"plain_http": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if hosts["r.example"].Password != "p" || hosts["ghcr.io"].Token != "t" || !hosts["lab:5000"].PlainHTTP {
		t.Fatalf("hosts %+v", hosts)
	}
	for _, tc := range []struct{ in, want string }{
		{``, "empty"},
		{`{"r": {`, "invalid JSON"},
		{`{"r": {"username": 1}}`, `field "username"`},
		{`{"r": {"colour": "red"}}`, "unknown field"},
		{`{"r": {"token": "t", "username": "u", "password": "p"}}`, "not both"},
		{`{"r": {"username": "u"}}`, "needs a password"},
		{`{"r": {"mirrors": ["ftp://m"]}}`, "mirrors[0]"},
		{`{"r": {"mirrors": ["https://m/path"]}}`, "base URL"},
		{`{"https://r": {}}`, "without a scheme"},
		{`{"r": {"concurrency": -1}}`, "concurrency -1"},
		{`{} {}`, "more than one"},
	} {
		_, err := registry.ParseHosts([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseHosts(%s) = %v, want an error with %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(tc.in, `"p"`) && strings.Contains(err.Error(), `"p"`) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestKeychain(t *testing.T) {
	c := registry.New(registry.Config{Hosts: map[string]registry.Host{
		"r.example":   {Username: "u", Password: "p"},
		"docker.io":   {Token: "hub-token"},
		"m.example":   {Mirrors: []string{"https://mirror.example"}},
		"lab.example": {PlainHTTP: true},
	}})
	for _, tc := range []struct {
		registry string
		want     authn.AuthConfig
	}{
		{"r.example", authn.AuthConfig{Username: "u", Password: "p"}},
		{"index.docker.io", authn.AuthConfig{RegistryToken: "hub-token"}},
	} {
		reg, _ := name.NewRegistry(tc.registry)
		a, err := c.Keychain().Resolve(reg)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := a.Authorization()
		if *got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.registry, got, tc.want)
		}
	}
	if ms := c.Mirrors("M.example"); len(ms) != 1 || ms[0].String() != "https://mirror.example" {
		t.Errorf("mirrors %v", ms)
	}
	if !c.PlainHTTP("lab.example") || c.PlainHTTP("r.example") {
		t.Error("plain HTTP per host")
	}
}

// hit is one request a test server saw.
type hit struct {
	at   time.Time
	path string
}

type recorder struct {
	mu   sync.Mutex
	hits []hit
}

func (r *recorder) add(p string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits = append(r.hits, hit{time.Now(), p})
	return len(r.hits)
}

func (r *recorder) all() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}

var quiet = registry.WithLogger(slog.New(slog.DiscardHandler))

func fast(cfg registry.Config) registry.Config {
	cfg.RetryBase, cfg.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	return cfg
}

func get(t *testing.T, rt http.RoundTripper, u string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	resp, err := rt.RoundTrip(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     []int // statuses answered before success
		header   string
		attempts int
		want     int // final status
		requests int
	}{
		{"500 then success", []int{500}, "", 5, 200, 2},
		{"502 503 504 then success", []int{502, 503, 504}, "", 5, 200, 4},
		{"500 forever gives up", []int{500, 500, 500, 500, 500, 500}, "", 3, 500, 3},
		{"429 without Retry-After", []int{429}, "", 5, 200, 2},
		{"404 is not retried", []int{404}, "", 5, 404, 1},
		{"501 is not retried", []int{501}, "", 5, 501, 1},
		{"401 is not retried", []int{401}, "", 5, 401, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := rec.add(r.URL.Path)
				if n <= len(tc.fail) {
					w.WriteHeader(tc.fail[n-1])
					return
				}
				w.Write([]byte("ok"))
			}))
			defer srv.Close()
			c := registry.New(fast(registry.Config{MaxAttempts: tc.attempts}), quiet)
			resp, err := get(t, c.Transport(), srv.URL+"/v2/x/blobs/sha256:00")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want || len(rec.all()) != tc.requests {
				t.Fatalf("status %d after %d requests, want %d after %d", resp.StatusCode, len(rec.all()), tc.want, tc.requests)
			}
		})
	}
}

func TestConnectionErrorsAreRetried(t *testing.T) {
	// A server that drops the first two connections, then answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew && conns.Add(1) <= 2 {
				c.Close()
			}
		}}
	go srv.Serve(ln)
	defer srv.Close()
	c := registry.New(fast(registry.Config{}), quiet)
	resp, err := get(t, c.Transport(), "http://"+ln.Addr().String()+"/v2/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	if conns.Load() != 3 {
		t.Fatalf("%d connections, want 3", conns.Load())
	}

	// Refused connections: retried, then the error.
	start := time.Now()
	_, err = get(t, registry.New(fast(registry.Config{MaxAttempts: 3}), quiet).Transport(), "http://127.0.0.1:1/v2/")
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("error %v", err)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatalf("gave up after %s: no backoff", time.Since(start))
	}
}

// TestRetryAfterGatesTheRegistry: a 429 with Retry-After: 2 holds the
// request and every other request to the same registry for ~2 s; another
// registry is not held.
func TestRetryAfterGatesTheRegistry(t *testing.T) {
	var rec recorder
	var throttled atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r.URL.Path)
		if r.URL.Path == "/v2/a/blobs/x" && throttled.CompareAndSwap(false, true) {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var otherAt time.Time
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherAt = time.Now(); w.Write([]byte("ok")) }))
	defer other.Close()

	reader := sdkmetric.NewManualReader()
	c := registry.New(fast(registry.Config{}), quiet, registry.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	rt := c.Transport()
	start := time.Now()
	done := make(chan time.Duration, 1)
	go func() {
		resp, err := get(t, rt, srv.URL+"/v2/a/blobs/x")
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("throttled request: %v %v", resp, err)
		}
		done <- time.Since(start)
	}()
	// Once the 429 is in, a request to the same registry waits too...
	for len(rec.all()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := get(t, rt, other.URL+"/v2/"); err != nil {
		t.Fatal(err)
	}
	resp, err := get(t, rt, srv.URL+"/v2/b/blobs/y")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("second request: %v %v", resp, err)
	}
	second := time.Since(start)
	first := <-done
	hits := rec.all()
	if len(hits) != 3 {
		t.Fatalf("%d requests, want 3 (429, then two after the wait): %v", len(hits), hits)
	}
	for _, h := range hits[1:] {
		if gap := h.at.Sub(hits[0].at); gap < 1800*time.Millisecond {
			t.Errorf("%s sent %s after the 429, want at least ~2s", h.path, gap)
		}
	}
	if first < 1800*time.Millisecond || second < 1800*time.Millisecond {
		t.Errorf("requests done after %s and %s, want both after ~2s", first, second)
	}
	if !otherAt.Before(hits[1].at) {
		t.Errorf("the request to another registry was held by this one's Retry-After")
	}
	if got := counter(t, reader, "stevedore.registry.retries"); got != 1 {
		t.Errorf("retries metric %d, want 1", got)
	}
	if got := counter(t, reader, "stevedore.registry.bytes"); got != int64(3*len("ok")) {
		t.Errorf("bytes metric %d, want %d", got, 3*len("ok"))
	}
}

func TestRetryAfterTooLongFailsTransiently(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c := registry.New(fast(registry.Config{MaxRetryAfter: 5 * time.Second}), quiet)
	resp, err := get(t, c.Transport(), srv.URL+"/v2/")
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("first: %v %v, want the 429", resp, err)
	}
	// The gate stays shut: the next request fails without being sent.
	_, err = get(t, c.Transport(), srv.URL+"/v2/x")
	if !errors.Is(err, registry.ErrThrottled) {
		t.Fatalf("second: %v, want ErrThrottled", err)
	}
	if n.Load() != 1 {
		t.Fatalf("%d requests sent, want 1", n.Load())
	}
}

func TestConcurrencyLimitHoldsUntilBodyClosed(t *testing.T) {
	var inflight, peak atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := registry.New(registry.Config{Hosts: map[string]registry.Host{u.Host: {Concurrency: 2}}})
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			get(t, c.Transport(), srv.URL+"/v2/x/blobs/sha256:1")
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for inflight.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for a third, if the limit leaked
	if got := inflight.Load(); got != 2 {
		t.Errorf("%d requests in flight, want 2", got)
	}
	close(release)
	wg.Wait()
	if peak.Load() != 2 {
		t.Errorf("peak %d in flight, want 2", peak.Load())
	}
}

func TestPlainHTTPHost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "plain") }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := registry.New(registry.Config{Hosts: map[string]registry.Host{u.Host: {PlainHTTP: true}}})
	resp, err := get(t, c.Transport(), "https://"+u.Host+"/v2/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	// Without the setting the same URL fails (HTTPS to a plain server).
	if _, err := get(t, registry.New(registry.Config{MaxAttempts: 1}).Transport(), "https://"+u.Host+"/v2/"); err == nil {
		t.Fatal("https to a plain-HTTP server worked")
	}
}

// counter sums a counter's data points.
func counter(t *testing.T, r *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// TestWithMaxAttemptsSharesGates: a one-attempt view of a client sends
// each request once, and shares the client's Retry-After gates both ways.
func TestWithMaxAttemptsSharesGates(t *testing.T) {
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := status.Swap(0); s != 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(int(s))
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := registry.New(fast(registry.Config{MaxAttempts: 5}), quiet)
	once := c.WithMaxAttempts(1)
	if once.Config().MaxAttempts != 1 || c.Config().MaxAttempts != 5 {
		t.Fatalf("attempts: view %d, client %d", once.Config().MaxAttempts, c.Config().MaxAttempts)
	}
	for _, tc := range []struct {
		name          string
		first, second *registry.Client
		firstStatus   int // what the first request gets back
	}{
		{"the view's 429 holds the client", once, c, http.StatusTooManyRequests},
		{"the client's 429 holds the view", c, once, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status.Store(http.StatusTooManyRequests)
			start := time.Now()
			resp, err := get(t, tc.first.Transport(), srv.URL+"/v2/a/blobs/x")
			if err != nil || resp.StatusCode != tc.firstStatus {
				t.Fatalf("first request: %v %v, want %d", resp, err, tc.firstStatus)
			}
			resp, err = get(t, tc.second.Transport(), srv.URL+"/v2/b/blobs/y")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("second request: %v %v", resp, err)
			}
			if d := time.Since(start); d < 900*time.Millisecond {
				t.Errorf("both requests done in %s, want the second held ~1s by the first's Retry-After", d)
			}
		})
	}
}
