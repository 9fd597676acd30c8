package leases_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/pgtest"
	"github.com/stevedore-dev/stevedore/pkg/leases"
)

const digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestAcquireBusyExpireTakeover(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	a := leases.New(pool, "a", leases.WithTTL(600*time.Millisecond))
	b := leases.New(pool, "b", leases.WithTTL(600*time.Millisecond))

	la, err := a.Acquire(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Acquire(ctx, digest)
	var busy *leases.BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("second acquire: got %v, want BusyError", err)
	}
	if busy.Holder != "a" || busy.Remaining <= 0 || busy.Remaining > 600*time.Millisecond {
		t.Fatalf("busy = %+v", busy)
	}

	// Renewal keeps the lease past its TTL.
	time.Sleep(1500 * time.Millisecond)
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
