package maintenance_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/maintenance"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
)

// leaderWatch counts the services running across competing electors: how
// many at once now, the most ever at once, and which elector runs one.
type leaderWatch struct {
	mu      sync.Mutex
	running map[string]bool
	most    int
	starts  int
}

func (w *leaderWatch) service(name string) maintenance.Service {
	return maintenance.NewLoop("probe", func(ctx context.Context) {
		w.mu.Lock()
		w.running[name] = true
		w.starts++
		w.most = max(w.most, len(w.running))
		w.mu.Unlock()
		<-ctx.Done()
		w.mu.Lock()
		delete(w.running, name)
		w.mu.Unlock()
	})
}

// leader returns the one elector running its service ("" for none).
func (w *leaderWatch) leader() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name := range w.running {
		return name, len(w.running)
	}
	return "", 0
}

func (w *leaderWatch) stats() (most, starts int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.most, w.starts
}

// contender is one process campaigning: its own pool, lease manager and
// elector.
type contender struct {
	name    string
	pool    *pgxpool.Pool
	elector *maintenance.Elector
	cancel  context.CancelFunc
	done    chan struct{}
}

func startContender(t *testing.T, url, name string, ttl time.Duration, w *leaderWatch) *contender {
	t.Helper()
	pool, err := postgres.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e, err := maintenance.NewElector(maintenance.ElectorConfig{
		Leases:   leases.New(pool, name, leases.WithTTL(ttl)),
		Services: []maintenance.Service{w.service(name)},
		Interval: 50 * time.Millisecond,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &contender{name: name, pool: pool, elector: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		e.Run(ctx)
	}()
	t.Cleanup(c.stop)
	return c
}

// stop stops the contender as a process that shuts down does: the
// leadership is given up.
func (c *contender) stop() {
	c.cancel()
	<-c.done
}

// die stops the contender as a process that dies does: it can no longer
// reach the database, so its lease stays until it expires.
func (c *contender) die() {
	c.pool.Close()
	c.stop()
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOneLeaderAmongCompetingElectors: three processes campaign on one
// database; exactly one runs the services at any time. When the leader
// stops, another takes over at once; when the leader dies (its database
// gone, its lease left behind), another takes over once the lease expires;
// the last one standing leads.
func TestOneLeaderAmongCompetingElectors(t *testing.T) {
	url := pgtest.URL(t)
	const ttl = 2 * time.Second
	w := &leaderWatch{running: map[string]bool{}}
	cs := map[string]*contender{}
	for i := range 3 {
		name := fmt.Sprintf("node-%d", i)
		cs[name] = startContender(t, url, name, ttl, w)
	}
	var first string
	waitFor(t, "a leader elected", 10*time.Second, func() bool { first, _ = w.leader(); return first != "" })
	// It stays the only leader across several renewals.
	time.Sleep(ttl + ttl/2)
	if l, n := w.leader(); l != first || n != 1 {
		t.Fatalf("leader %q (%d running), want %q alone", l, n, first)
	}
	for name, c := range cs {
		if c.elector.Leader() != (name == first) {
			t.Fatalf("%s says leader=%v; the leader is %s", name, c.elector.Leader(), first)
		}
	}

	// The leader shuts down: it gives the lease up, and another leads well
	// before the lease would have expired.
	stopped := time.Now()
	cs[first].stop()
	var second string
	waitFor(t, "a new leader after the leader stopped", ttl/2, func() bool { second, _ = w.leader(); return second != "" && second != first })
	t.Logf("took over %s after the leader stopped", time.Since(stopped).Round(time.Millisecond))

	// The new leader dies: the last contender leads once its lease expires,
	// not before.
	died := time.Now()
	cs[second].die()
	var third string
	waitFor(t, "a new leader after the leader died", ttl+5*time.Second, func() bool { third, _ = w.leader(); return third != "" && third != second })
	if took := time.Since(died); took < ttl/2 {
		t.Fatalf("took over %s after the leader died, before its lease (%s) could have expired", took, ttl)
	}
	if third == first {
		t.Fatalf("the stopped contender %s leads again", first)
	}
	if most, starts := w.stats(); most != 1 || starts != 3 {
		t.Fatalf("at most %d services ran at once and %d started; want 1 at a time, 3 in all", most, starts)
	}
}

// TestLeaderThatLosesItsDatabaseStepsDown: a leader whose lease renewals
// fail stops its services once its lease could have expired, and another
// process is elected.
func TestLeaderThatLosesItsDatabaseStepsDown(t *testing.T) {
	url := pgtest.URL(t)
	const ttl = time.Second
	w := &leaderWatch{running: map[string]bool{}}
	a := startContender(t, url, "a", ttl, w)
	waitFor(t, "a leads", 10*time.Second, func() bool { l, _ := w.leader(); return l == "a" })
	startContender(t, url, "b", ttl, w)
	a.pool.Close() // renewals fail from now on; a keeps running
	waitFor(t, "a steps down and b leads", 3*ttl+5*time.Second, func() bool { l, n := w.leader(); return l == "b" && n == 1 })
	if a.elector.Leader() {
		t.Fatal("a still says it leads")
	}
}

// TestNewElectorNeedsLeasesAndInterval: an elector is not built without
// what it needs.
func TestNewElectorNeedsLeasesAndInterval(t *testing.T) {
	for _, cfg := range []maintenance.ElectorConfig{{}, {Interval: time.Second}, {Leases: leases.New(nil, "x")}} {
		if _, err := maintenance.NewElector(cfg); err == nil {
			t.Errorf("NewElector(%+v) succeeded", cfg)
		}
	}
}

// TestLoopStartsStopsAndRestarts: a loop runs until stopped, refuses a
// second start while running, and runs again after a stop (a leader that
// lost and regained the leadership).
func TestLoopStartsStopsAndRestarts(t *testing.T) {
	var runs, running atomic.Int32
	l := maintenance.NewLoop("probe", func(ctx context.Context) {
		runs.Add(1)
		running.Add(1)
		defer running.Add(-1)
		<-ctx.Done()
	})
	l.Stop() // not running: nothing to do
	for i := range 2 {
		if err := l.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := l.Start(context.Background()); err != maintenance.ErrStarted {
			t.Fatalf("second Start: %v, want ErrStarted", err)
		}
		waitFor(t, "the loop running", 5*time.Second, func() bool { return running.Load() == 1 })
		l.Stop()
		if running.Load() != 0 || runs.Load() != int32(i+1) {
			t.Fatalf("after Stop: %d running, %d runs", running.Load(), runs.Load())
		}
	}
}
