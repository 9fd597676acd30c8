package e2e_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

// quayHeaders are the headers of a Quay notification to /webhooks/quay.
func quayHeaders() map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("quay:"+whToken)), "Content-Type": "application/json"}
}

// maintenanceHarness is a harness whose registry answers manifest
// lookups with 503 while the returned switch is set (see inMaintenance),
// and its webhook configuration for workers, with a 3-second resolve
// timeout, to adjust and start.
func maintenanceHarness(t *testing.T, workers int, seen func(*http.Request)) (*harness, *atomic.Bool, app.Config) {
	broken := new(atomic.Bool)
	h := newHarness(t, inMaintenance(broken, seen))
	cfg := h.webhookConfig(workers)
	cfg.Webhooks.ResolveTimeout = 3 * time.Second
	return h, broken, cfg
}

// inMaintenance answers the registry's manifest requests other than
// pushes with 503 while broken is set, after calling seen (when not nil)
// with each.
func inMaintenance(broken *atomic.Bool, seen func(*http.Request)) devregistry.Option {
	return devregistry.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if class, _, _ := devregistry.Classify(r.URL.Path); broken.Load() && class == devregistry.ClassManifests && r.Method != http.MethodPut {
				if seen != nil {
					seen(r)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"registry is in maintenance"}]}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
}

func tagNames(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	return tags
}

// TestWebhookEventOverTheCapRefused: a Quay event naming more tags than
// --webhook-max-targets is refused whole with 413 and the reason: no
// lookup, no pending row, no job.
func TestWebhookEventOverTheCapRefused(t *testing.T) {
	h := newHarness(t)
	cfg := h.webhookConfig(1)
	cfg.Webhooks.MaxTargets = 50
	cfg.Webhooks.MaxBodySize = 1 << 20
	h.start(cfg)
	p := h.pushImage("many", "1.0", "many-pkg")
	h.reg.Counter().Reset()

	status, out := h.post("/webhooks/quay", quayHeaders(), quayPush(p, tagNames(10000)...))
	want := "the event names 10000 images, more than the limit of 50 per event"
	if status != http.StatusRequestEntityTooLarge || out["code"] != "too-many-targets" || !strings.Contains(fmt.Sprint(out["message"]), want) {
		msg := fmt.Sprint(out["message"])
		t.Fatalf("HTTP %d %v %.200s, want 413 too-many-targets with %q", status, out["code"], msg, want)
	}
	if n := h.reg.Counter().Requests(devregistry.ClassManifests); n != 0 {
		t.Errorf("%d manifest requests to the registry for a refused event", n)
	}
	if n := h.count(`SELECT count(*) FROM webhook_pending`); n != 0 {
		t.Errorf("%d pending rows for a refused event", n)
	}
	if n := h.count(`SELECT count(*) FROM index_report`); n != 0 {
		t.Errorf("%d reports for a refused event", n)
	}
}

// TestWebhookEventAtTheCapAnswersInTime: a Quay event naming as many tags as
// the cap, against a registry that takes 100 ms per manifest request, is
// answered within its resolve timeout with every tag resolved: the lookups
// run ResolveConcurrency at once (never more), not one after the other
// (40 tags × 2 requests × 100 ms = 8 s, twice the timeout). The tags name
// one digest: one job.
func TestWebhookEventAtTheCapAnswersInTime(t *testing.T) {
	const targets, concurrency = 40, 8
	var inFlight, most atomic.Int64
	var slow atomic.Bool
	h := newHarness(t, devregistry.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if class, _, _ := devregistry.Classify(r.URL.Path); slow.Load() && class == devregistry.ClassManifests {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(100 * time.Millisecond)
			}
			next.ServeHTTP(w, r)
		})
	}))
	cfg := h.webhookConfig(1)
	cfg.Webhooks.MaxTargets = targets
	cfg.Webhooks.ResolveConcurrency = concurrency
	cfg.Webhooks.ResolveTimeout = 4 * time.Second
	h.start(cfg)
	tags := tagNames(targets)
	p := h.pushImage("wide", tags[0], "wide-pkg", tags[1:]...)
	slow.Store(true)

	// The answer must come within the resolve timeout (plus the time to
	// store what was not resolved): the client gives up a little after.
	client := &http.Client{Timeout: cfg.Webhooks.ResolveTimeout + 5*time.Second}
	req, err := http.NewRequest(http.MethodPost, h.api.URL+"/webhooks/quay", strings.NewReader(quayPush(p, tags...)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range quayHeaders() {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("no answer within the resolve timeout: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Accepted []struct{ Reference, Resolved string }
		Deferred []struct{ Reference, Error string }
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("HTTP %d %s (%v)", resp.StatusCode, raw, err)
	}
	if len(out.Accepted) != targets || len(out.Deferred) != 0 {
		t.Fatalf("%d accepted, %d deferred (first: %v); want all %d resolved in time", len(out.Accepted), len(out.Deferred), out.Deferred[0], targets)
	}
	if m := most.Load(); m > concurrency {
		t.Errorf("%d manifest requests at once, more than the %d lookups allowed at once", m, concurrency)
	}
	slow.Store(false)
	if r := h.wait(p.digest); r.State != report.StateIndexFinished {
		t.Fatalf("state %s: %s", r.State, r.Err)
	}
	if runs, _ := h.runs(p.digest); runs != 1 {
		t.Errorf("%d runs for %d tags of one digest, want 1", runs, targets)
	}
}

// TestWebhookRetriesRateLimitedPerRegistry: the lookups of a Quay event
// whose registry fails are stored and retried in the background at most
// --webhook-retry-rate a second for that registry, however many rows are
// due (30 rows, backoff 200 ms: unbounded, that is ~300 lookups a second).
func TestWebhookRetriesRateLimitedPerRegistry(t *testing.T) {
	const targets, rate = 30, 4
	var mu sync.Mutex
	var lookups []time.Time
	h, broken, cfg := maintenanceHarness(t, 1, func(r *http.Request) {
		if r.Method == http.MethodHead {
			mu.Lock()
			lookups = append(lookups, time.Now())
			mu.Unlock()
		}
	})
	cfg.Webhooks.MaxTargets = targets
	cfg.Webhooks.RetryRate = rate
	h.start(cfg)
	tags := tagNames(targets)
	p := h.pushImage("down", tags[0], "down-pkg", tags[1:]...)
	broken.Store(true)

	status, out := h.post("/webhooks/quay", quayHeaders(), quayPush(p, tags...))
	if def, _ := out["deferred"].([]any); status != http.StatusAccepted || len(def) != targets {
		t.Fatalf("HTTP %d, %d deferred; want 202 with all %d deferred", status, len(def), targets)
	}
	mu.Lock()
	first := len(lookups) // the request's own lookups
	mu.Unlock()
	start := time.Now()
	time.Sleep(3 * time.Second)
	mu.Lock()
	retries := len(lookups) - first
	mu.Unlock()
	window := time.Since(start)
	// The limiter's burst (the rate) plus the rate over the window, plus
	// one lookup that may have been in flight at each end.
	limit := rate + int(rate*window.Seconds()) + 2
	if retries > limit {
		t.Errorf("%d retried lookups in %s, more than the %d the rate of %d a second allows", retries, window.Round(time.Millisecond), limit, rate)
	}
	if retries == 0 {
		t.Error("no retry in the window: the failed lookups are not retried")
	}
	t.Logf("%d retried lookups in %s (rate %d/s, at most %d)", retries, window.Round(time.Millisecond), rate, limit)
}
