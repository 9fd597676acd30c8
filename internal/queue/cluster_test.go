package queue_test

import (
	"context"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/testing/natstest"
)

// The stream's replicas default to 3 on a cluster (an R1 stream made before
// is scaled up) and 1 on a single server or a cluster too small for 3.
func TestDefaultReplicas(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		connect   func(t *testing.T) *natstest.Cluster
		existing  int // replicas of a stream made before; 0: none
		want      int
		clustered bool
	}{
		{"single", func(t *testing.T) *natstest.Cluster {
			s := natstest.Start(t)
			return &natstest.Cluster{NC: s.NC, JS: s.JS}
		}, 0, 1, false},
		{"cluster of 3", func(t *testing.T) *natstest.Cluster { return natstest.StartCluster(t, 3) }, 0, 3, true},
		{"cluster of 3, R1 stream before", func(t *testing.T) *natstest.Cluster { return natstest.StartCluster(t, 3) }, 1, 3, true},
		{"cluster of 2", func(t *testing.T) *natstest.Cluster { return natstest.StartCluster(t, 2) }, 0, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.connect(t)
			if got := queue.DefaultReplicas(c.NC) == 3; got != tc.clustered {
				t.Fatalf("DefaultReplicas = %d on a clustered=%v server", queue.DefaultReplicas(c.NC), tc.clustered)
			}
			if tc.existing > 0 {
				if _, err := queue.EnsureStream(ctx, c.JS, queue.StreamConfig{Replicas: tc.existing}); err != nil {
					t.Fatal(err)
				}
			}
			s, err := queue.EnsureStream(ctx, c.JS, queue.StreamConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().Config.Replicas; got != tc.want {
				t.Fatalf("stream replicas %d, want %d", got, tc.want)
			}
		})
	}
}

// Killing the stream's leader loses no published job, and publishes made
// right after the kill succeed once a new leader is elected (the publisher
// retries while nothing answers).
func TestPublishesSurviveTheStreamLeadersDeath(t *testing.T) {
	ctx := context.Background()
	c := natstest.StartCluster(t, 3)
	if _, err := queue.EnsureStream(ctx, c.JS, queue.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	leader := c.StreamLeader(queue.DefaultStream)
	if leader < 0 {
		t.Fatal("no stream leader")
	}
	// Publish through a server that survives.
	_, js := natstest.Connect(t, c.Servers[(leader+1)%3].ClientURL())
	pub := queue.NewPublisher(js, nil)
	hexes := "0123456789abcdef"
	for i := range 8 {
		if out, err := pub.Publish(ctx, job(hexes[i:i+1])); err != nil || out != queue.Queued {
			t.Fatalf("publish %d before the kill: %v %v", i, out, err)
		}
	}
	c.Kill(leader)
	for i := 8; i < 16; i++ {
		if out, err := pub.Publish(ctx, job(hexes[i:i+1])); err != nil || out != queue.Queued {
			t.Fatalf("publish %d after the leader's death: %v %v", i, out, err)
		}
	}
	s, err := js.Stream(ctx, queue.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 16 {
		t.Fatalf("%d jobs in the stream, want 16", info.State.Msgs)
	}
	if l := c.StreamLeader(queue.DefaultStream); l < 0 || l == leader {
		t.Fatalf("stream leader %d after the kill of %d", l, leader)
	}
	t.Logf("stream leader n%d killed; 16 jobs stored; new leader n%d", leader, c.StreamLeader(queue.DefaultStream))
}
