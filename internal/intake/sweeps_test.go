package intake_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/report"
)

// The sweeps' publishing without servers: a stored job that cannot be
// decoded is skipped, the others are published and marked.

func TestRequeueWaiting(t *testing.T) {
	job, _ := json.Marshal(&queue.Job{Manifest: manifest("a")})
	st := &memStore{requeue: []postgres.Requeue{
		{Digest: manifest("a").Hash, Job: job, Attempt: 2},
		{Digest: manifest("b").Hash, Job: []byte(`{`), Attempt: 1},
	}}
	pub := &memPublisher{}
	n, err := intake.New(st, pub, nil, state, nil).RequeueWaiting(context.Background(), 10)
	if err != nil || n != 1 {
		t.Fatalf("requeued %d, %v; want 1", n, err)
	}
	if !slices.Equal(pub.scheduled, []int{3}) || !slices.Equal(st.marked, []string{"requeued " + string(manifest("a").Hash)}) {
		t.Errorf("scheduled %v, marked %v", pub.scheduled, st.marked)
	}
}

func TestReindexStale(t *testing.T) {
	job, _ := json.Marshal(&queue.Job{Manifest: manifest("a"), ScannerState: "old"})
	st := &memStore{reindex: []postgres.Reindex{
		{Digest: manifest("a").Hash, Job: job, Forced: true},
		{Digest: manifest("b").Hash, Job: []byte(`{`)},
	}}
	pub := &memPublisher{}
	n, err := intake.New(st, pub, nil, state, nil).ReindexStale(context.Background(), 10)
	if err != nil || n != 1 {
		t.Fatalf("queued %d, %v; want 1", n, err)
	}
	if len(pub.published) != 1 || pub.published[0].ScannerState != state || !pub.published[0].Force || pub.published[0].Generation == "" {
		t.Errorf("published %+v", pub.published)
	}
	// The unusable job is marked too, so that the sweep does not find it
	// again at once; both in one write.
	if len(st.marked) != 2 || st.marks != 1 {
		t.Errorf("marked %v in %d writes; want 2 in 1", st.marked, st.marks)
	}
}

// A publish that fails ends the sweep with its error, and what came before
// it is still marked.
func TestReindexStalePublishFails(t *testing.T) {
	job, _ := json.Marshal(&queue.Job{Manifest: manifest("a"), ScannerState: "old"})
	st := &memStore{reindex: []postgres.Reindex{
		{Digest: manifest("b").Hash, Job: []byte(`{`)},
		{Digest: manifest("a").Hash, Job: job},
	}}
	pub := &memPublisher{err: errors.New("no stream leader")}
	n, err := intake.New(st, pub, nil, state, nil).ReindexStale(context.Background(), 10)
	if err == nil || n != 0 {
		t.Fatalf("queued %d, %v; want 0 and the publish error", n, err)
	}
	if !slices.Equal(st.marked, []string{"reindex " + string(manifest("b").Hash)}) {
		t.Errorf("marked %v; want the unusable job only", st.marked)
	}
}

// A round goes on after the last report the round before marked while
// rounds find a full batch; a short one (the end of a pass) or a round that
// marked nothing starts the next from the top or where it was.
func TestReindexStaleGoesOn(t *testing.T) {
	job, _ := json.Marshal(&queue.Job{Manifest: manifest("a"), ScannerState: "old"})
	batch := []postgres.Reindex{
		{Digest: manifest("b").Hash, Job: []byte(`{`)},
		{Digest: manifest("a").Hash, Job: job},
	}
	for _, c := range []struct {
		name   string
		limit  int
		pubErr error
		want   []report.Digest
	}{
		{"full batches", 2, nil, []report.Digest{"", manifest("a").Hash, manifest("a").Hash}},
		{"short batches", 3, nil, []report.Digest{"", "", ""}},
		{"publish fails", 2, errors.New("no stream leader"), []report.Digest{"", manifest("b").Hash, manifest("b").Hash}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &memStore{reindex: batch}
			d := intake.New(st, &memPublisher{err: c.pubErr}, nil, state, nil)
			for range 3 {
				_, _ = d.ReindexStale(context.Background(), c.limit)
			}
			if !slices.Equal(st.afters, c.want) {
				t.Errorf("rounds after %q; want %q", st.afters, c.want)
			}
		})
	}
}

// A report asked for above where the pass is, in a batch that ends with a
// failed publish, does not take the pass back up.
func TestReindexStaleStaysDown(t *testing.T) {
	job, _ := json.Marshal(&queue.Job{Manifest: manifest("a"), ScannerState: "old"})
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	st := &memStore{reindex: []postgres.Reindex{
		{Digest: manifest("c").Hash, Job: []byte(`{`), RequestedAt: at(3)},
		{Digest: manifest("b").Hash, Job: []byte(`{`), RequestedAt: at(2)},
	}}
	pub := &memPublisher{err: errors.New("no stream leader")}
	d := intake.New(st, pub, nil, state, nil)
	_, _ = d.ReindexStale(context.Background(), 2)
	st.reindex = []postgres.Reindex{
		{Digest: manifest("d").Hash, Job: []byte(`{`), RequestedAt: at(4), Forced: true},
		{Digest: manifest("a").Hash, Job: job, RequestedAt: at(1)},
	}
	_, _ = d.ReindexStale(context.Background(), 2)
	_, _ = d.ReindexStale(context.Background(), 2)
	if want := []report.Digest{"", manifest("b").Hash, manifest("b").Hash}; !slices.Equal(st.afters, want) {
		t.Errorf("rounds after %q; want %q", st.afters, want)
	}
}
