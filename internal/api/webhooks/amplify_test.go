package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// blockingDispatcher's lookups last until their context ends; it counts
// them and the most at once.
type blockingDispatcher struct {
	fakeDispatcher
	mu                 sync.Mutex
	started, now, most int
}

func (b *blockingDispatcher) IndexReference(ctx context.Context, ref, platform string) ([]report.Image, error) {
	b.mu.Lock()
	b.started++
	b.now++
	b.most = max(b.most, b.now)
	b.mu.Unlock()
	<-ctx.Done()
	b.mu.Lock()
	b.now--
	b.mu.Unlock()
	return nil, fmt.Errorf("registry: %w", ctx.Err())
}

// harborPush is a Harbor event naming n images of hub.harbor.com by digest.
func harborPush(n int) string {
	var res []map[string]string
	for i := range n {
		d := fmt.Sprintf("sha256:%064x", i+1)
		res = append(res, map[string]string{"digest": d, "tag": fmt.Sprintf("t%d", i), "resource_url": "hub.harbor.com/test-webhook/debian@" + d})
	}
	b, _ := json.Marshal(map[string]any{"type": "PUSH_ARTIFACT", "occur_at": 1586922308, "operator": "admin",
		"event_data": map[string]any{"resources": res, "repository": map[string]any{"name": "debian", "namespace": "test-webhook", "repo_full_name": "test-webhook/debian"}}})
	return string(b)
}

func TestTargetsPerEvent(t *testing.T) {
	regs, _ := ParseRegistries("hub.harbor.com")
	header := map[string]string{"Authorization": testToken, "Content-Type": "application/json"}
	for _, tc := range []struct {
		name    string
		targets int
		status  int
		want    string
	}{
		{"at the cap", 10, 202, ""},
		{"over the cap", 11, 413, "the event names 11 images, more than the limit of 10 per event (STEVEDORE_WEBHOOK_MAX_TARGETS): nothing was queued"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := pgtest.Pool(t)
			fd := &fakeDispatcher{}
			h := New(Config{Secrets: testSecrets(), Registries: regs, MaxTargets: 10, MaxBodySize: 1 << 20}, fd, pool, slog.New(slog.DiscardHandler), nil)
			w, out := do(t, h, request{path: "/webhooks/harbor", header: header, body: harborPush(tc.targets)})
			if w.Code != tc.status {
				t.Fatalf("HTTP %d %v, want %d", w.Code, out, tc.status)
			}
			refs, _ := fd.calls()
			if tc.status != 202 {
				if out["code"] != "too-many-targets" || !strings.Contains(fmt.Sprint(out["message"]), tc.want) {
					t.Errorf("answer %v, want too-many-targets with %q", out, tc.want)
				}
				if len(refs) != 0 {
					t.Errorf("%d lookups for a refused event", len(refs))
				}
			} else if len(refs) != tc.targets {
				t.Errorf("%d lookups, want %d", len(refs), tc.targets)
			}
			var n int
			if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_pending`).Scan(&n); err != nil || n != 0 {
				t.Errorf("pending rows: %d, %v; want none", n, err)
			}
		})
	}
}

// TestLookupsBoundedUnderOneDeadline: the lookups of one event run at most
// ResolveConcurrency at once and all end with one ResolveTimeout; those not
// started by then are not started at all, and every one not done is stored
// for the retries.
func TestLookupsBoundedUnderOneDeadline(t *testing.T) {
	pool := pgtest.Pool(t)
	regs, _ := ParseRegistries("hub.harbor.com")
	bd := &blockingDispatcher{}
	h := New(Config{Secrets: testSecrets(), Registries: regs, MaxTargets: 40, ResolveConcurrency: 4, ResolveTimeout: 200 * time.Millisecond},
		bd, pool, slog.New(slog.DiscardHandler), nil)
	w, out := do(t, h, request{path: "/webhooks/harbor", header: map[string]string{"Authorization": testToken, "Content-Type": "application/json"}, body: harborPush(40)})
	if w.Code != 202 {
		t.Fatalf("HTTP %d %v", w.Code, out)
	}
	var resp Response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Deferred) != 40 || len(resp.Accepted) != 0 {
		t.Fatalf("%d deferred, %d accepted; want all 40 deferred", len(resp.Deferred), len(resp.Accepted))
	}
	notStarted := 0
	for _, d := range resp.Deferred {
		if strings.Contains(d.Error, "not looked up: the request's resolve timeout ended first") {
			notStarted++
		}
	}
	bd.mu.Lock()
	started, most := bd.started, bd.most
	bd.mu.Unlock()
	if most != 4 || started != 4 || notStarted != 36 {
		t.Errorf("lookups: %d started, at most %d at once, %d not started; want 4, 4, 36", started, most, notStarted)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_pending WHERE attempts = 1 AND given_up_at IS NULL`).Scan(&n); err != nil || n != 40 {
		t.Errorf("pending rows: %d, %v; want 40", n, err)
	}
}

// TestThrottledRegistrySkipped: a registry that used its retries is left
// by claim while another's due rows are taken.
func TestThrottledRegistrySkipped(t *testing.T) {
	pool := pgtest.Pool(t)
	p := newPendingStore(pool)
	ctx := context.Background()
	now := func(int) time.Duration { return 0 }
	if err := p.addAll(ctx, Quay, []string{"a.example/x:1", "a.example/x:2"}, []string{"e", "e"}, now); err != nil {
		t.Fatal(err)
	}
	if err := p.addAll(ctx, Quay, []string{"b.example:5000/y:1"}, []string{"e"}, now); err != nil {
		t.Fatal(err)
	}
	l := newRetryLimits(2)
	for range 2 {
		if !l.limiter("a.example").Allow() {
			t.Fatal("a fresh limiter has no burst")
		}
	}
	skip, wait := l.throttled(time.Now())
	if len(skip) != 1 || skip[0] != "a.example" || wait <= 0 || wait > time.Second {
		t.Fatalf("throttled %v, next in %s; want a.example within 1s", skip, wait)
	}
	row, err := p.claim(ctx, time.Minute, skip)
	if err != nil || row == nil || registryOf(row.Reference) != "b.example:5000" {
		t.Fatalf("claim: %+v, %v; want the row of b.example:5000", row, err)
	}
	if row, err := p.claim(ctx, time.Minute, skip); err != nil || row != nil {
		t.Fatalf("claim: %+v, %v; want none (a.example is throttled)", row, err)
	}
	if row, err := p.claim(ctx, time.Minute, nil); err != nil || row == nil || registryOf(row.Reference) != "a.example" {
		t.Fatalf("claim without throttling: %+v, %v", row, err)
	}
}
