package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/natstest"
	"github.com/stevedore-dev/stevedore/report"
)

// On a 3-node NATS cluster the job stream has 3 replicas: killing the
// node that leads it in the middle of a batch loses no job, requests made
// right after the kill are queued (not refused) once a new leader is
// elected, and indexing goes on to finish every image.
func TestStreamLeaderDeathLosesNoJob(t *testing.T) {
	hold := newHold()
	h := newHarness(t, devregistry.WithMiddleware(hold.middleware))
	c := natstest.StartCluster(t, 3)
	cfg := h.config(2, true)
	cfg.NATSURL = c.URLs()
	h.start(cfg)
	s, err := c.JS.Stream(context.Background(), queue.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("job stream has %d replicas on a cluster, want 3", r)
	}

	const images = 10
	var ms []*report.Manifest
	base := baseFiles(7)
	for i := range images {
		ms = append(ms, h.push(fmt.Sprintf("cluster:%d", i), base, topFiles(i)))
	}
	// Mid-batch: the workers' jobs wait for the shared base layer, the
	// others are queued.
	hold.set(string(ms[0].Layers[0].Hash))
	for _, m := range ms[:images/2] {
		if _, err := h.client.IndexManifest(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "jobs in flight and jobs queued", 30*time.Second, func() bool {
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == images/2 && h.reg.Counter().InFlight() > 0
	})
	leader := c.StreamLeader(queue.DefaultStream)
	if leader < 0 {
		t.Fatal("no stream leader")
	}
	c.Kill(leader)
	killedAt := time.Now()
	for i, m := range ms[images/2:] {
		if _, err := h.client.IndexManifest(context.Background(), m); err != nil {
			t.Fatalf("request %d after the stream leader's death: %v", images/2+i, err)
		}
	}
	close(hold.open)
	for i, m := range ms {
		r := h.wait(m.Hash)
		if r.State != report.StateIndexFinished {
			t.Fatalf("image %d: state %s, err %q", i, r.State, r.Err)
		}
		if _, finished := h.runs(m.Hash); finished != 1 {
			t.Fatalf("image %d: %d final writes, want 1", i, finished)
		}
	}
	// A generous bound, not a speed measurement.
	if took := time.Since(killedAt); took > time.Minute {
		t.Fatalf("indexing finished %s after the kill, want within a minute", took.Round(time.Millisecond))
	}
	t.Logf("stream leader n%d killed; new leader n%d; all %d images finished %s after the kill",
		leader, c.StreamLeader(queue.DefaultStream), images, time.Since(killedAt).Round(time.Millisecond))
}
