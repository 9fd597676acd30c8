package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// regPath is a registry holding org/app:1.0, one registry client, a layer
// fetcher and a webhook handler sharing it (the tag lookups on its
// one-attempt view, as internal/app assembles them), and a switch for the
// registry's injected failures.
type regPath struct {
	reg   *devregistry.Server
	fail  atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
	layer *report.Layer
	f     *fetch.Fetcher
	h     *Handler
}

func newRegPath(t *testing.T, cfg func(addr string) registry.Config) *regPath {
	t.Helper()
	p := &regPath{}
	p.reg = devregistry.NewTestServer(t, devregistry.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if f := p.fail.Load(); f != nil && (*f)(w, r) {
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": []byte("ID=alpine\n")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devregistry.PushLayers(context.Background(), p.reg.Ref("org/app:1.0"), l); err != nil {
		t.Fatal(err)
	}
	ld, _ := l.Digest()
	repo, _ := name.NewRepository(p.reg.Ref("org/app"), name.Insecure)
	p.layer = &report.Layer{Hash: report.Digest(ld.String()), URI: resolve.BlobURL(repo, ld.String())}
	p.reg.Counter().Reset()
	c := registry.New(cfg(p.reg.Addr), registry.WithLogger(slog.New(slog.DiscardHandler)))
	p.f = fetch.New(fetch.WithClient(c), fetch.WithLogger(slog.New(slog.DiscardHandler)))
	regs, err := ParseRegistries("quay.example.com=" + p.reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	p.h = New(Config{Secrets: testSecrets(), Registries: regs, RetryBase: time.Minute,
		Tags: resolve.New(resolve.WithClient(c.WithMaxAttempts(1)))}, &fakeDispatcher{}, pgtest.Pool(t), slog.New(slog.DiscardHandler), nil)
	return p
}

// injectOnce makes the registry answer the first request matched with
// status and the headers given.
func (p *regPath) injectOnce(match func(*http.Request) bool, status int, header map[string]string) {
	var done atomic.Bool
	f := func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r) || !done.CompareAndSwap(false, true) {
			return false
		}
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		return true
	}
	p.fail.Store(&f)
}

// quayPush posts Quay's event for org/app:1.0 (tags only: the handler
// looks the tag up).
func (p *regPath) quayPush(t *testing.T) (int, Response) {
	t.Helper()
	w, _ := do(t, p.h, request{path: "/webhooks/quay", header: map[string]string{"Authorization": basic("stevedore", testToken), "Content-Type": "application/json"},
		body: `{"repository":"org/app","docker_url":"quay.example.com/org/app","updated_tags":["1.0"]}`})
	var resp Response
	json.Unmarshal(w.Body.Bytes(), &resp)
	return w.Code, resp
}

func (p *regPath) fetch(t *testing.T) error {
	t.Helper()
	rc, err := p.f.Open(context.Background(), p.layer)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

func isTag(r *http.Request) bool {
	class, _, ref := devregistry.Classify(r.URL.Path)
	return class == devregistry.ClassManifests && ref == "1.0"
}

// after429 returns when the registry answered 429, and the requests it got
// after.
func (p *regPath) after429(t *testing.T) (time.Time, []devregistry.Request) {
	t.Helper()
	log := p.reg.Counter().Log()
	for i, r := range log {
		if r.Status == http.StatusTooManyRequests {
			return r.Time, log[i+1:]
		}
	}
	t.Fatalf("no 429 in %+v", log)
	return time.Time{}, nil
}

// requests returns the registry's requests of one class.
func (p *regPath) requests(match devregistry.Class) []devregistry.Request {
	var out []devregistry.Request
	for _, r := range p.reg.Counter().Log() {
		if r.Class == match {
			out = append(out, r)
		}
	}
	return out
}

func quickRetries(cfg registry.Config) registry.Config {
	cfg.RetryBase, cfg.RetryMax, cfg.MaxRetryAfter = 10*time.Millisecond, 20*time.Millisecond, 5*time.Second
	return cfg
}

// TestTagLookupAllowlistLikeBlobFetch: the webhooks' tag lookups go through
// the registry client blob fetches use, so the client's allowlist refuses
// them as it refuses a fetch, before anything is sent: the event is
// refused whole (403), as when the dispatcher's allowlist refuses it.
func TestTagLookupAllowlistLikeBlobFetch(t *testing.T) {
	p := newRegPath(t, func(string) registry.Config {
		return quickRetries(registry.Config{Allowlist: registry.Allowlist{"registry.example.com"}})
	})
	if err := p.fetch(t); !errors.Is(err, fetch.ErrPermanent) || !strings.Contains(err.Error(), "allowlist") {
		t.Fatalf("blob fetch: %v, want a permanent refusal by the allowlist", err)
	}
	code, resp := p.quayPush(t)
	if code != http.StatusForbidden {
		t.Fatalf("HTTP %d %+v, want 403", code, resp)
	}
	if n := len(p.reg.Counter().Log()); n != 0 {
		t.Fatalf("the registry was sent %d requests: %+v", n, p.reg.Counter().Log())
	}
}

// TestTagLookupObeysRetryAfterLikeBlobFetch: a 429 with Retry-After holds
// every request of the process to the registry, whichever path got it: a
// blob fetch's 429 holds a tag lookup, and a tag lookup's 429 holds its own
// next request (the GET after the HEAD) and a blob fetch. A Retry-After
// longer than the client waits fails the lookup at once (it is stored for
// the retries), as it fails a fetch.
func TestTagLookupObeysRetryAfterLikeBlobFetch(t *testing.T) {
	oneSecond := map[string]string{"Retry-After": "1"}
	t.Run("a blob fetch's 429 holds the tag lookup", func(t *testing.T) {
		p := newRegPath(t, func(string) registry.Config { return quickRetries(registry.Config{}) })
		p.injectOnce(devregistry.BlobGets, http.StatusTooManyRequests, oneSecond)
		done := make(chan error, 1)
		go func() { done <- p.fetch(t) }()
		for len(p.requests(devregistry.ClassBlobs)) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		throttledAt := p.requests(devregistry.ClassBlobs)[0].Time
		code, resp := p.quayPush(t)
		if code != http.StatusAccepted || len(resp.Accepted) != 1 || resp.Accepted[0].Resolved == "" {
			t.Fatalf("HTTP %d %+v, want the tag resolved", code, resp)
		}
		if err := <-done; err != nil {
			t.Fatalf("blob fetch: %v", err)
		}
		tags := p.requests(devregistry.ClassManifests)
		if len(tags) == 0 || tags[0].Time.Sub(throttledAt) < 900*time.Millisecond {
			t.Fatalf("tag lookup sent %v after the blob's 429, want after its Retry-After (1s): %+v", tags[0].Time.Sub(throttledAt), tags)
		}
	})
	t.Run("a tag lookup's 429 holds its GET and a blob fetch", func(t *testing.T) {
		p := newRegPath(t, func(string) registry.Config { return quickRetries(registry.Config{}) })
		p.injectOnce(isTag, http.StatusTooManyRequests, oneSecond)
		done := make(chan error, 1)
		go func() {
			for len(p.requests(devregistry.ClassManifests)) == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			done <- p.fetch(t)
		}()
		code, resp := p.quayPush(t)
		if code != http.StatusAccepted || len(resp.Accepted) != 1 || resp.Accepted[0].Resolved == "" {
			t.Fatalf("HTTP %d %+v, want the tag resolved after the wait", code, resp)
		}
		if err := <-done; err != nil {
			t.Fatalf("blob fetch: %v", err)
		}
		at, after := p.after429(t)
		if len(after) < 2 {
			t.Fatalf("requests after the 429: %+v, want the tag's GET and the blob's", after)
		}
		for _, r := range after {
			if gap := r.Time.Sub(at); gap < 900*time.Millisecond {
				t.Errorf("%s %s sent %v after the 429, want after its Retry-After (1s)", r.Method, r.Path, gap)
			}
		}
	})
	t.Run("a Retry-After longer than the client waits", func(t *testing.T) {
		p := newRegPath(t, func(string) registry.Config { return quickRetries(registry.Config{}) })
		p.injectOnce(isTag, http.StatusTooManyRequests, map[string]string{"Retry-After": "3600"})
		code, resp := p.quayPush(t)
		if code != http.StatusAccepted || len(resp.Deferred) != 1 || !strings.Contains(resp.Deferred[0].Error, registry.ErrThrottled.Error()) {
			t.Fatalf("HTTP %d %+v, want the lookup deferred, throttled", code, resp)
		}
		if err := p.fetch(t); !errors.Is(err, registry.ErrThrottled) {
			t.Fatalf("blob fetch: %v, want ErrThrottled", err)
		}
		if _, after := p.after429(t); len(after) != 0 {
			t.Fatalf("requests after the 429: %+v, want none", after)
		}
	})
}

// TestTagLookupFailures: the registry client's answers to 5xx and to
// redirects apply to tag lookups: one attempt per request (the lookup is
// stored and retried on the webhooks' schedule) where a blob fetch retries,
// and a redirect to a host the allowlist does not name is refused
// without reaching it.
func TestTagLookupFailures(t *testing.T) {
	t.Run("5xx: one attempt per request, deferred", func(t *testing.T) {
		p := newRegPath(t, func(string) registry.Config { return quickRetries(registry.Config{MaxAttempts: 3}) })
		f := func(w http.ResponseWriter, r *http.Request) bool {
			if isTag(r) {
				w.WriteHeader(http.StatusBadGateway)
				return true
			}
			return false
		}
		p.fail.Store(&f)
		code, resp := p.quayPush(t)
		if code != http.StatusAccepted || len(resp.Deferred) != 1 || !strings.Contains(resp.Deferred[0].Error, "502") {
			t.Fatalf("HTTP %d %+v, want the lookup deferred with the 502", code, resp)
		}
		if n := len(p.requests(devregistry.ClassManifests)); n != 2 {
			t.Errorf("%d manifest requests, want 2 (HEAD and GET, one attempt each)", n)
		}
		p.injectOnce(devregistry.BlobGets, http.StatusBadGateway, nil)
		if err := p.fetch(t); err != nil {
			t.Fatalf("blob fetch after one 502: %v, want it retried", err)
		}
	})
	t.Run("redirect to a host not allowed", func(t *testing.T) {
		var elsewhere atomic.Int32
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
		defer other.Close()
		p := newRegPath(t, func(addr string) registry.Config {
			return quickRetries(registry.Config{Allowlist: registry.Allowlist{addr}})
		})
		f := func(w http.ResponseWriter, r *http.Request) bool {
			if isTag(r) || devregistry.BlobGets(r) {
				http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
				return true
			}
			return false
		}
		p.fail.Store(&f)
		code, resp := p.quayPush(t)
		if code != http.StatusAccepted || len(resp.Deferred) != 1 || !strings.Contains(resp.Deferred[0].Error, "neither an allowed registry") {
			t.Fatalf("HTTP %d %+v, want the lookup deferred, its redirect refused", code, resp)
		}
		if err := p.fetch(t); !errors.Is(err, registry.ErrNotAllowed) {
			t.Fatalf("blob fetch: %v, want its redirect refused", err)
		}
		if elsewhere.Load() != 0 {
			t.Fatalf("the other host got %d requests", elsewhere.Load())
		}
	})
}
