package e2e_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/report"
)

// Requests that race the end of a job (20 clients asking again and again
// while it runs and as it finishes) queue no second job: one job is
// published, one run is made.
func TestRequestsRacingTheEndOfAJobQueueNoSecondJob(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(1, true))
	for round := range 2 {
		m := h.push("race:"+string(rune('a'+round)), baseFiles(uint64(round)), topFiles(round))
		before := lastSeq(t, h)
		if _, err := h.client.IndexManifest(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		// 20 clients ask until the report has been final for a while.
		var done atomic.Bool
		var wg sync.WaitGroup
		var requests atomic.Int64
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !done.Load() {
					if _, err := h.client.IndexManifest(context.Background(), m); err != nil {
						t.Error(err)
						return
					}
					requests.Add(1)
					time.Sleep(2 * time.Millisecond)
				}
			}()
		}
		r := h.wait(m.Hash)
		time.Sleep(500 * time.Millisecond)
		done.Store(true)
		wg.Wait()
		if r.State != report.StateIndexFinished {
			t.Fatalf("state %s, err %q", r.State, r.Err)
		}
		// Every job published took a stream sequence.
		published := lastSeq(t, h) - before
		runs, finished := h.runs(m.Hash)
		t.Logf("round %d: %d requests, %d jobs published, %d runs, %d final writes", round, requests.Load(), published, runs, finished)
		if published != 1 || runs != 1 || finished != 1 {
			t.Fatalf("round %d: %d jobs published, %d runs, %d final writes; want 1 each", round, published, runs, finished)
		}
	}
}

// lastSeq is the job stream's last sequence.
func lastSeq(t *testing.T, h *harness) uint64 {
	t.Helper()
	stream, err := h.nats.JS.Stream(context.Background(), queue.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}
