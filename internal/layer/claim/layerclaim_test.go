package claim_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/layer/claim"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
)

const key = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

// work is a layer's stored results, seen by every claimant.
type work struct {
	stored atomic.Bool
	runs   atomic.Int32
	fail   atomic.Int32 // runs left to fail
}

func (w *work) needed(context.Context) (bool, error) { return !w.stored.Load(), nil }

func (w *work) run(context.Context) error {
	w.runs.Add(1)
	time.Sleep(50 * time.Millisecond) // a download
	if w.fail.Add(-1) >= 0 {
		return errors.New("registry unavailable")
	}
	w.stored.Store(true)
	return nil
}

func TestOneRunAmongMany(t *testing.T) {
	pool := pgtest.Pool(t)
	for _, tc := range []struct {
		name      string
		processes int // Claims, each with its own lease holder
		callers   int // per process
		fail      int32
		wantRuns  int32
		wantErrs  int
	}{
		{"one process", 1, 10, 0, 1, 0},
		{"three processes", 3, 4, 0, 1, 0},
		{"the first run fails: another caller runs again", 2, 4, 1, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &work{}
			w.fail.Store(tc.fail)
			var wg sync.WaitGroup
			var errs, ran atomic.Int32
			for p := range tc.processes {
				c := claim.New(leases.New(pool, "p"+string(rune('a'+p)), leases.WithTTL(3*time.Second)), claim.WithPoll(20*time.Millisecond))
				for range tc.callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						out, err := c.Do(context.Background(), tc.name+key, w.needed, w.run)
						if err != nil {
							errs.Add(1)
						}
						if out == claim.Ran {
							ran.Add(1)
						}
					}()
				}
			}
			wg.Wait()
			if w.runs.Load() != tc.wantRuns || ran.Load() != tc.wantRuns || int(errs.Load()) != tc.wantErrs || !w.stored.Load() {
				t.Fatalf("%d runs (%d reported), %d errors, stored %v; want %d runs, %d errors",
					w.runs.Load(), ran.Load(), errs.Load(), w.stored.Load(), tc.wantRuns, tc.wantErrs)
			}
			var leftover int
			pool.QueryRow(context.Background(), `SELECT count(*) FROM lease WHERE digest = $1`, claim.KeyPrefix+tc.name+key).Scan(&leftover)
			if leftover != 0 {
				t.Fatalf("%d claims left", leftover)
			}
		})
	}
}

func TestClaimOfADeadHolderExpires(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	// A holder that died: its lease is never renewed nor released.
	if _, err := pool.Exec(ctx, `INSERT INTO lease (digest, holder, fence, acquired_at, expires_at)
VALUES ($1, 'dead', nextval('lease_fence_seq'), now(), now() + interval '1 second')`, claim.KeyPrefix+key); err != nil {
		t.Fatal(err)
	}
	c := claim.New(leases.New(pool, "alive", leases.WithTTL(3*time.Second)), claim.WithPoll(50*time.Millisecond))
	w := &work{}
	var checks atomic.Int32
	needed := func(ctx context.Context) (bool, error) { checks.Add(1); return w.needed(ctx) }
	start := time.Now()
	out, err := c.Do(ctx, key, needed, w.run)
	if err != nil || out != claim.Ran || w.runs.Load() != 1 {
		t.Fatalf("outcome %v, %v, %d runs", out, err, w.runs.Load())
	}
	if waited := time.Since(start); waited < 800*time.Millisecond {
		t.Fatalf("ran after %s, before the dead holder's claim expired", waited)
	}
	if checks.Load() < 2 {
		t.Fatalf("stored results checked %d times, want after each wait and under the claim", checks.Load())
	}

	// A waiter whose context ends gives up with the context's error.
	l, err := leases.New(pool, "other", leases.WithTTL(3*time.Second)).Acquire(ctx, claim.KeyPrefix+"k2")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.Do(cctx, "k2", (&work{}).needed, (&work{}).run); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func TestNotNeededUnderTheClaim(t *testing.T) {
	pool := pgtest.Pool(t)
	c := claim.New(leases.New(pool, "x"))
	w := &work{}
	w.stored.Store(true)
	out, err := c.Do(context.Background(), key, w.needed, w.run)
	if err != nil || out != claim.NotNeeded || w.runs.Load() != 0 {
		t.Fatalf("%v %v %d runs", out, err, w.runs.Load())
	}
	boom := errors.New("database down")
	if _, err := c.Do(context.Background(), key, func(context.Context) (bool, error) { return false, boom }, w.run); !errors.Is(err, boom) {
		t.Fatalf("error of needed: %v", err)
	}
}
