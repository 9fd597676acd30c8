// Package claim makes workers that need the same layer at the same
// moment fetch it once: one of them fetches and scans it, the others wait
// and then find its results stored.
//
// Inside a process, callers for the same key form a queue behind the one
// that runs (singleflight, except that a waiter does not take the first
// one's outcome: it asks again whether the work is still needed, so a
// failure of the first, or a job whose context ended, does not fail the
// others). Across processes, the one that runs holds a short fenced Postgres
// lease on "layer:<key>" (internal/postgres/leases), renewed while it works; a worker that
// finds the lease held waits until it is released or expires, then asks
// again. The answer is usually that the results are there: nothing to fetch.
//
// The claim only avoids duplicate downloads. Correctness does not depend on
// it: results are written under the fence of each job's manifest lease, as
// without it, and a claim whose holder died expires after the lease TTL.
// So a claim is taken with leases.Manager.AcquireVolatile: Postgres does not
// flush it to disk before answering (a crash of Postgres may forget it, which
// costs at most a second download).
package claim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
)

// KeyPrefix prefixes the lease keys of layer claims.
const KeyPrefix = "layer:"

// DefaultPoll is the longest a waiter sleeps between looks at a claim held
// by another process.
const DefaultPoll = 250 * time.Millisecond

// Claims hands out claims on keys (layer digests). It is safe for
// concurrent use; one Claims serves a whole process.
type Claims struct {
	leases *leases.Manager
	poll   time.Duration

	mu      sync.Mutex
	flights map[string]chan struct{}
}

// Option configures Claims.
type Option func(*Claims)

// WithPoll sets the longest sleep between looks at a claim held by another
// process (default DefaultPoll).
func WithPoll(d time.Duration) Option { return func(c *Claims) { c.poll = d } }

// New returns Claims that take their leases from m (its TTL is the claims').
func New(m *leases.Manager, opts ...Option) *Claims {
	c := &Claims{leases: m, poll: DefaultPoll, flights: map[string]chan struct{}{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Outcome is what Do did.
type Outcome int

// The outcomes of Do.
const (
	// Ran: the caller held the claim and run was called.
	Ran Outcome = iota
	// NotNeeded: needed said no (usually after waiting for another
	// holder, whose results are now stored); run was not called.
	NotNeeded
)

// Do calls run for key while holding the claim on it, unless needed, asked
// while holding the claim (and after every wait for another holder), says
// the work is done already. needed is the caller's check of stored
// results; it must not take the claim itself. run's context is ctx: losing
// the claim's lease does not cancel it (the claim only saves downloads).
// An error of needed or run is returned as is; a failure to take the claim
// is wrapped.
func (c *Claims) Do(ctx context.Context, key string, needed func(context.Context) (bool, error), run func(context.Context) error) (Outcome, error) {
	for {
		c.mu.Lock()
		wait, busy := c.flights[key]
		if !busy {
			done := make(chan struct{})
			c.flights[key] = done
			c.mu.Unlock()
			out, err := c.lead(ctx, key, needed, run)
			c.mu.Lock()
			delete(c.flights, key)
			c.mu.Unlock()
			close(done)
			return out, err
		}
		c.mu.Unlock()
		// Another caller in this process has it: wait, then ask again
		// without the claim (cheap, and usually the end of it).
		select {
		case <-wait:
		case <-ctx.Done():
			return NotNeeded, fmt.Errorf("wait for the claim on %s: %w", key, ctx.Err())
		}
		ok, err := needed(ctx)
		if err != nil {
			return NotNeeded, err
		}
		if !ok {
			return NotNeeded, nil
		}
	}
}

// lead takes the cross-process claim, waiting while another process holds
// it, and runs.
func (c *Claims) lead(ctx context.Context, key string, needed func(context.Context) (bool, error), run func(context.Context) error) (Outcome, error) {
	for {
		l, err := c.leases.AcquireVolatile(ctx, KeyPrefix+key)
		var busy *leases.BusyError
		if errors.As(err, &busy) {
			// Poll: a release is not announced. Jitter keeps waiters of
			// many processes from asking in step.
			d := min(busy.Remaining, c.poll)
			d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
			t := time.NewTimer(max(d, 5*time.Millisecond))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return NotNeeded, fmt.Errorf("wait for the claim on %s held by %s: %w", key, busy.Holder, ctx.Err())
			}
			ok, err := needed(ctx)
			if err != nil {
				return NotNeeded, err
			}
			if !ok {
				return NotNeeded, nil
			}
			continue
		}
		if err != nil {
			return NotNeeded, fmt.Errorf("claim %s: %w", key, err)
		}
		out, err := c.holding(ctx, needed, run)
		// A claim that could not be released only delays the others
		// until it expires.
		_ = l.Release(context.WithoutCancel(ctx))
		return out, err
	}
}

func (c *Claims) holding(ctx context.Context, needed func(context.Context) (bool, error), run func(context.Context) error) (Outcome, error) {
	// Asked again under the claim: the results may have been stored
	// between the caller's look and the claim.
	ok, err := needed(ctx)
	if err != nil {
		return NotNeeded, err
	}
	if !ok {
		return NotNeeded, nil
	}
	return Ran, run(ctx)
}
