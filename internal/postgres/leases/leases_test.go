package leases_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
)

const digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestAcquireBusyExpireTakeover(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	// A TTL a renewal (every third of it) misses only when it is late by
	// two thirds of it: 400 ms was missed on the 2 shared cores under load.
	const ttl = 2 * time.Second
	a := leases.New(pool, "a", leases.WithTTL(ttl))
	b := leases.New(pool, "b", leases.WithTTL(ttl))

	la, err := a.Acquire(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Acquire(ctx, digest)
	var busy *leases.BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("second acquire: got %v, want BusyError", err)
	}
	if busy.Holder != "a" || busy.Remaining <= 0 || busy.Remaining > ttl {
		t.Fatalf("busy = %+v", busy)
	}

	// Renewal keeps the lease past its TTL.
	time.Sleep(ttl * 5 / 2)
	if la.Context().Err() != nil {
		t.Fatalf("lease lost while renewed: %v", context.Cause(la.Context()))
	}
	if _, err := b.Acquire(ctx, digest); !errors.As(err, &busy) {
		t.Fatalf("acquire of a renewed lease: got %v, want BusyError", err)
	}

	// Released: the other holder gets it at once, with a larger fence, and
	// the old fence can no longer write.
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatalf("second release: %v", err)
	}
	lb, err := b.Acquire(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release(ctx)
	if lb.Fence <= la.Fence {
		t.Fatalf("fence did not grow: %d then %d", la.Fence, lb.Fence)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := leases.Check(ctx, tx, digest, la.Fence); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("stale fence check: got %v, want ErrLost", err)
	}
	if err := leases.Check(ctx, tx, digest, lb.Fence); err != nil {
		t.Fatalf("current fence check: %v", err)
	}
}

func TestLostLeaseCancelsContext(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	m := leases.New(pool, "a", leases.WithTTL(300*time.Millisecond))
	l, err := m.Acquire(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	// Another holder takes the row over behind our back (as after a pause
	// longer than the TTL).
	if _, err := pool.Exec(ctx, `UPDATE lease SET fence = nextval('lease_fence_seq'), holder = 'thief' WHERE digest = $1`, digest); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("lease context not cancelled after the lease was taken over")
	}
	if !l.Lost() || !errors.Is(context.Cause(l.Context()), leases.ErrLost) {
		t.Fatalf("cause = %v, want ErrLost", context.Cause(l.Context()))
	}
}

func TestExpiredLeaseIsTakenAndStaleWriteRefused(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	a := leases.New(pool, "a", leases.WithTTL(time.Hour))
	la, err := a.Acquire(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a holder that stopped renewing: its lease ran out.
	if _, err := pool.Exec(ctx, `UPDATE lease SET expires_at = now() - interval '1 second' WHERE digest = $1`, digest); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := leases.Check(ctx, tx, digest, la.Fence); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("expired fence check: got %v, want ErrLost", err)
	}
	tx.Rollback(ctx)
	b := leases.New(pool, "b", leases.WithTTL(time.Hour))
	lb, err := b.Acquire(ctx, digest)
	if err != nil {
		t.Fatalf("acquire after expiry: %v", err)
	}
	if lb.Fence <= la.Fence {
		t.Fatalf("fence did not grow: %d then %d", la.Fence, lb.Fence)
	}
	// The old holder's release must not delete the new holder's lease.
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM lease WHERE fence = $1`, lb.Fence).Scan(&n); err != nil || n != 1 {
		t.Fatalf("new holder's lease row: n=%d err=%v", n, err)
	}
	lb.Release(ctx)
}

// A holder whose renewals failed (Postgres restarting) lost its lease by its
// own clock while the row still says it holds it: its next Acquire takes it
// over at once with a new fence, instead of waiting for the row to expire.
// Another process with the same holder name, or a live lease of its own, is
// still busy, and the error says who holds it.
func TestOwnStaleLeaseIsRetaken(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	a := leases.New(pool, "worker-1", leases.WithTTL(900*time.Millisecond))
	la, err := a.Acquire(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	// Renewals hang (the row is locked, as if the database were away) until
	// the lease is lost by the holder's clock; the row is left unexpired.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE lease SET expires_at = now() + interval '1 hour' WHERE digest = $1`, digest); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("lease not lost while renewals failed")
	}
	if !la.Lost() {
		t.Fatalf("lease ended with %v, want lost", context.Cause(la.Context()))
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// Another process that happens to use the same holder name: busy.
	other := leases.New(pool, "worker-1", leases.WithTTL(time.Hour))
	_, err = other.Acquire(ctx, digest)
	var busy *leases.BusyError
	if !errors.As(err, &busy) || busy.Self || busy.Holder != "worker-1" {
		t.Fatalf("another process: got %v (%+v), want busy, not self", err, busy)
	}

	// The holder itself retakes it, with a new fence; the old fence is dead.
	la2, err := a.Acquire(ctx, digest)
	if err != nil {
		t.Fatalf("retake of an own stale lease: %v", err)
	}
	defer la2.Release(ctx)
	if la2.Fence <= la.Fence {
		t.Fatalf("fence did not grow: %d then %d", la.Fence, la2.Fence)
	}
	check, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := leases.Check(ctx, check, digest, la.Fence); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("old fence: %v, want ErrLost", err)
	}
	check.Rollback(ctx)

	// While that lease is live, a second Acquire of the same holder is busy,
	// and says the holder is this process.
	_, err = a.Acquire(ctx, digest)
	if !errors.As(err, &busy) || !busy.Self || !strings.Contains(err.Error(), "this process (worker-1)") {
		t.Fatalf("second acquire while live: got %v, want busy by this process", err)
	}
	// The old lease's late release does not free the new one.
	la.Release(ctx)
	if _, err := other.Acquire(ctx, digest); !errors.As(err, &busy) {
		t.Fatalf("after the old lease's release: %v, want busy", err)
	}
}

// A volatile lease (AcquireVolatile: not flushed before the answer) excludes
// other holders as a durable one does, in both directions, and is released
// the same way.
func TestVolatileLeaseExcludesAsDurable(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	a := leases.New(pool, "a", leases.WithTTL(time.Minute))
	b := leases.New(pool, "b", leases.WithTTL(time.Minute))
	for _, tc := range []struct {
		name         string
		first, other func(context.Context, string) (*leases.Lease, error)
	}{
		{"volatile first", a.AcquireVolatile, b.Acquire},
		{"durable first", a.Acquire, b.AcquireVolatile},
	} {
		held, err := tc.first(ctx, digest)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var busy *leases.BusyError
		if _, err := tc.other(ctx, digest); !errors.As(err, &busy) || busy.Holder != "a" {
			t.Fatalf("%s: the other holder got %v, want a BusyError naming a", tc.name, err)
		}
		if err := held.Release(ctx); err != nil {
			t.Fatalf("%s: release: %v", tc.name, err)
		}
		next, err := tc.other(ctx, digest)
		if err != nil {
			t.Fatalf("%s: after the release: %v", tc.name, err)
		}
		if next.Fence <= held.Fence {
			t.Errorf("%s: fence did not grow: %d then %d", tc.name, held.Fence, next.Fence)
		}
		if err := next.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
