package maintenance_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/api/webhooks"
	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/maintenance"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// rounds records the calls of a sweep.
type rounds struct {
	mu     sync.Mutex
	limits []int
	err    error
}

func (r *rounds) round(_ context.Context, limit int) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limits = append(r.limits, limit)
	return 0, r.err
}

func (r *rounds) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.limits)
}

// TestSweeps: the requeue and re-index services do a round every interval,
// each of at most rate × interval items (at least one), go on after a
// failed round, and do nothing once stopped.
func TestSweeps(t *testing.T) {
	for _, tc := range []struct {
		name      string
		new       func(func(context.Context, int) (int, error), maintenance.Sweep) *maintenance.Loop
		rate      int
		interval  time.Duration
		wantLimit int
	}{
		{"requeue", func(f func(context.Context, int) (int, error), s maintenance.Sweep) *maintenance.Loop {
			return maintenance.NewRequeuer(f, s)
		}, 10, 200 * time.Millisecond, 2},
		{"reindex", func(f func(context.Context, int) (int, error), s maintenance.Sweep) *maintenance.Loop {
			return maintenance.NewReindexer(f, s)
		}, 5, 20 * time.Millisecond, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rounds{err: errors.New("database went away")}
			s := tc.new(r.round, maintenance.Sweep{Interval: tc.interval, Rate: tc.rate, Logger: slog.New(slog.DiscardHandler)})
			start := time.Now()
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "three rounds", 10*time.Second, func() bool { return r.count() >= 3 })
			s.Stop()
			if took := time.Since(start); took < 3*tc.interval {
				t.Fatalf("three rounds in %s, faster than the interval %s", took, tc.interval)
			}
			n := r.count()
			time.Sleep(3 * tc.interval)
			if r.count() != n {
				t.Fatalf("%d rounds after Stop", r.count()-n)
			}
			for _, l := range r.limits {
				if l != tc.wantLimit {
					t.Fatalf("round limits %v, want %d each", r.limits, tc.wantLimit)
				}
			}
		})
	}
}

// lookups is the webhooks' dispatcher: it records the references the
// retries index.
type lookups struct {
	mu   sync.Mutex
	refs []string
}

func (l *lookups) Index(context.Context, *report.Manifest) (*report.Report, bool, error) {
	return nil, false, errors.New("not used")
}

func (l *lookups) IndexReference(_ context.Context, ref, _ string) ([]report.Image, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refs = append(l.refs, ref)
	return []report.Image{{Digest: "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf", State: report.StateCheckManifest, Queued: true}}, nil
}

func (l *lookups) AllowsRegistry(string) bool { return true }

func (l *lookups) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.refs...)
}

// TestWebhookRetrier: the service retries a stored lookup that is due and
// deletes its row once the lookup succeeds.
func TestWebhookRetrier(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	regs, err := webhooks.ParseRegistries("example.com")
	if err != nil {
		t.Fatal(err)
	}
	d := &lookups{}
	h := webhooks.New(webhooks.Config{
		Secrets:    map[webhooks.Source]string{webhooks.Distribution: "a-token-of-thirty-two-characters"},
		Registries: regs, PollInterval: 20 * time.Millisecond,
	}, d, pool, slog.New(slog.DiscardHandler), nil)
	const ref = "example.com/library/test@sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf"
	if _, err := pool.Exec(ctx, `INSERT INTO webhook_pending (source, reference, attempts, last_error, next_attempt)
VALUES ('distribution', $1, 1, 'registry example.com: connection refused', now())`, ref); err != nil {
		t.Fatal(err)
	}
	s := maintenance.NewWebhookRetrier(h)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	waitFor(t, "the stored lookup retried and its row deleted", 10*time.Second, func() bool {
		var n int
		pool.QueryRow(ctx, `SELECT count(*) FROM webhook_pending`).Scan(&n)
		return n == 0
	})
	if got := d.seen(); len(got) != 1 || got[0] != ref {
		t.Fatalf("indexed %q, want %q once", got, ref)
	}
}

// TestEnrichmentUpdater: the service loads its sources' data at once and
// asks again every interval (conditionally: a 304 confirms the data), and
// asks nothing once stopped.
func TestEnrichmentUpdater(t *testing.T) {
	ctx := context.Background()
	es := enrich.NewStore(postgres.New(pgtest.Pool(t)))
	var requests, conditional atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("If-None-Match") == `"v1"` {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, `{"data": {"rhel-8-for-x86_64-baseos-rpms": {"cpes": ["cpe:/o:redhat:enterprise_linux:8::baseos"]}}}`)
	}))
	defer srv.Close()
	u := &enrich.Updater{Store: es, Interval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Sources: []enrich.Source{{Name: enrich.RepositoryCPE, URL: srv.URL + "/repository-to-cpe.json"}}}
	s := maintenance.NewUpdater(u, slog.New(slog.DiscardHandler))
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the data loaded and asked for again", 10*time.Second, func() bool { return conditional.Load() >= 2 })
	s.Stop()
	meta, err := es.Meta(ctx, enrich.RepositoryCPE)
	if err != nil || meta.ETag != `"v1"` {
		t.Fatalf("loaded data: %+v, %v", meta, err)
	}
	n := requests.Load()
	time.Sleep(200 * time.Millisecond)
	if requests.Load() != n {
		t.Fatalf("%d requests after Stop", requests.Load()-n)
	}
}
