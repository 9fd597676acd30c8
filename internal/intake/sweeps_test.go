package intake_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/queue"
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
	// again at once.
	if len(st.marked) != 2 {
		t.Errorf("marked %v", st.marked)
	}
}
