package intake_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/report"
)

// Intake's decide-and-publish without servers: an in-memory intake.Store
// (its Enqueue keeps the promise of postgres.Store.Enqueue: the request is
// recorded only when publish queued a job) and Publisher. The real-server
// behaviour is held by internal/postgres's conformance suite and
// internal/e2e.

type memStore struct {
	reports map[report.Digest]*report.Report
	// requeue and reindex are what the sweeps find; marked what they
	// mark, in marks calls of MarkReindexQueued; afters the after of each
	// ReportsToReindex call ("" for nil).
	requeue []postgres.Requeue
	reindex []postgres.Reindex
	marked  []string
	marks   int
	afters  []report.Digest
}

func (s *memStore) Report(_ context.Context, d report.Digest) (*report.Report, error) {
	if r, ok := s.reports[d]; ok {
		return r, nil
	}
	return nil, postgres.ErrNotFound
}

func (s *memStore) Enqueue(ctx context.Context, d report.Digest, state string, current func(*report.Report) bool, publish postgres.Publish) (*report.Report, bool, error) {
	r, ok := s.reports[d]
	fresh := !ok
	if fresh {
		r = report.NewReport(d, report.StateCheckManifest)
		r.ScannerState = state
	} else if current(r) {
		return r, false, nil
	}
	queued, err := publish(ctx, r, fresh)
	if err != nil || !queued {
		return r, false, err
	}
	if r.State == report.StateIndexError {
		r = report.NewReport(d, report.StateCheckManifest)
		r.ScannerState = state
	}
	s.reports[d] = r
	return r, true, nil
}

func (s *memStore) PartialsToRequeue(context.Context, int) ([]postgres.Requeue, error) {
	return s.requeue, nil
}

func (s *memStore) MarkRequeued(_ context.Context, d report.Digest) error {
	s.marked = append(s.marked, "requeued "+string(d))
	return nil
}

func (s *memStore) ReportsToReindex(_ context.Context, _ string, _ time.Duration, after *postgres.Reindex, _ int) ([]postgres.Reindex, error) {
	var d report.Digest
	if after != nil {
		d = after.Digest
	}
	s.afters = append(s.afters, d)
	return s.reindex, nil
}

func (s *memStore) MarkReindexQueued(_ context.Context, ds []report.Digest) error {
	s.marks++
	for _, d := range ds {
		s.marked = append(s.marked, "reindex "+string(d))
	}
	return nil
}

type memPublisher struct {
	outcome   queue.Outcome
	err       error
	published []*queue.Job
	scheduled []int
}

func (p *memPublisher) Publish(_ context.Context, j *queue.Job) (queue.Outcome, error) {
	if p.err != nil {
		return 0, p.err
	}
	p.published = append(p.published, j)
	return p.outcome, nil
}

func (p *memPublisher) Schedule(_ context.Context, _ *queue.Job, attempt int, _ time.Time) error {
	p.scheduled = append(p.scheduled, attempt)
	return nil
}

const state = "state-1"

func manifest(c string) *report.Manifest {
	h := strings.Repeat(c, 64)
	return &report.Manifest{Hash: report.Digest("sha256:" + h), Layers: []*report.Layer{{
		Hash: report.Digest("sha256:" + h), URI: "https://user:hunter2@registry.example/v2/x/blobs/sha256:" + h}}}
}

func stored(c string, st report.State, scannerState string, nextRetry time.Duration) *report.Report {
	r := report.NewReport(manifest(c).Hash, st)
	r.ScannerState = scannerState
	if nextRetry != 0 {
		t := time.Now().Add(nextRetry)
		r.NextRetry = &t
	}
	return r
}

func TestIndexDecides(t *testing.T) {
	errNATS := errors.New("nats: no responders")
	for _, tc := range []struct {
		name        string
		stored      *report.Report
		outcome     queue.Outcome
		pubErr      error
		manifest    *report.Manifest
		wantQueued  bool
		wantPublish bool
		wantState   report.State
		wantErr     error
	}{
		{name: "new", wantQueued: true, wantPublish: true, wantState: report.StateCheckManifest},
		{name: "current", stored: stored("a", report.StateIndexFinished, state, 0), wantState: report.StateIndexFinished},
		{name: "older scanner set", stored: stored("a", report.StateIndexFinished, "state-0", 0),
			wantQueued: true, wantPublish: true, wantState: report.StateIndexFinished},
		{name: "partial, retry to come", stored: stored("a", report.StateIndexPartial, state, time.Minute), wantState: report.StateIndexPartial},
		{name: "partial, retry lost", stored: stored("a", report.StateIndexPartial, state, -time.Hour),
			wantQueued: true, wantPublish: true, wantState: report.StateIndexPartial},
		{name: "in progress, job pending", stored: stored("a", report.StateScanLayers, state, 0), outcome: queue.AlreadyQueued,
			wantQueued: true, wantPublish: true, wantState: report.StateScanLayers},
		{name: "error, its job still pending", stored: stored("a", report.StateIndexError, state, 0), outcome: queue.AlreadyQueued,
			wantPublish: true, wantState: report.StateIndexError},
		{name: "error, asked again", stored: stored("a", report.StateIndexError, state, 0),
			wantQueued: true, wantPublish: true, wantState: report.StateCheckManifest},
		{name: "queue down", pubErr: errNATS, wantErr: intake.ErrQueueUnavailable},
		{name: "invalid manifest", manifest: &report.Manifest{Hash: "sha256:short"}, wantErr: errors.New("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memStore{reports: map[report.Digest]*report.Report{}}
			if tc.stored != nil {
				st.reports[tc.stored.Hash] = tc.stored
			}
			pub := &memPublisher{outcome: tc.outcome, err: tc.pubErr}
			d := intake.New(st, pub, nil, state, slog.New(slog.DiscardHandler))
			m := tc.manifest
			if m == nil {
				m = manifest("a")
			}
			r, queued, err := d.Index(context.Background(), m)
			if tc.wantErr != nil {
				if err == nil || (tc.wantErr.Error() != "" && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("got %v, want an error wrapping %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error shows a credential: %v", err)
				}
				if _, ok := st.reports[m.Hash]; ok && tc.stored == nil {
					t.Error("a failed request left a report")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if queued != tc.wantQueued || (len(pub.published) > 0) != tc.wantPublish || r.State != tc.wantState {
				t.Fatalf("queued %v, published %d, state %s; want %v, %v, %s", queued, len(pub.published), r.State, tc.wantQueued, tc.wantPublish, tc.wantState)
			}
			if tc.wantPublish {
				j := pub.published[0]
				if j.Manifest != m || j.ScannerState != state || j.Generation == "" || j.Force {
					t.Errorf("published %+v", j)
				}
			}
		})
	}
}

func TestCurrent(t *testing.T) {
	d := intake.New(&memStore{}, &memPublisher{}, nil, state, nil)
	for _, tc := range []struct {
		r    *report.Report
		want bool
	}{
		{stored("a", report.StateIndexFinished, state, 0), true},
		{stored("a", report.StateIndexFinished, "other", 0), false},
		{stored("a", report.StateIndexPartial, state, time.Hour), true},
		{stored("a", report.StateIndexPartial, state, -5*time.Minute), true},
		{stored("a", report.StateIndexPartial, state, -11*time.Minute), false},
		{stored("a", report.StateIndexPartial, state, 0), false},
		{stored("a", report.StateIndexError, state, 0), false},
		{stored("a", report.StateCoalesce, state, 0), false},
	} {
		if got := d.Current(tc.r); got != tc.want {
			t.Errorf("Current(%s, %s, next retry %v) = %v, want %v", tc.r.State, tc.r.ScannerState, tc.r.NextRetry, got, tc.want)
		}
	}
}
