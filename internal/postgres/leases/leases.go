// Package leases gives one worker at a time the right to work on a manifest
// digest, with fencing.
//
// A lease is a row in Postgres, not a session advisory lock: advisory locks
// break with a connection pool and give no fencing. Each acquisition takes a
// fence from one global sequence, so a later holder always has a larger fence.
// Every write of results checks the fence in the same transaction (Check), so
// a worker that lost its lease (paused, partitioned, slow) cannot write. All
// times come from the database's clock.
package leases

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// ErrLost is returned by Check, and is the cause of a lease's context, when the
// lease is no longer held: it expired, or another holder took it.
var ErrLost = errors.New("lease lost")

// BusyError is returned by Acquire when another holder has the lease.
type BusyError struct {
	Digest string
	// Holder names who holds it (the holder name given to New).
	Holder string
	// Self says the holder is this Manager: another run in this process
	// holds the lease, live (a stale lease of its own is taken over).
	Self      bool
	Remaining time.Duration
}

func (e *BusyError) Error() string {
	who := e.Holder
	if e.Self {
		who = "this process (" + e.Holder + "), in another run"
	}
	return fmt.Sprintf("lease on %s is held by %s for another %s", e.Digest, who, e.Remaining.Round(time.Millisecond))
}

// Manager acquires leases for one holder (a worker replica).
type Manager struct {
	pool   *pgxpool.Pool
	holder string
	ttl    time.Duration
	tracer trace.Tracer
	// instance tells this Manager's leases from those of another with the
	// same holder name (another process, or a restarted one).
	instance string

	mu sync.Mutex
	// live maps the digests this Manager holds a lease on (renewed, not
	// released, not lost) to their fences; 0 while an Acquire is under way.
	live map[string]int64
}

// Option configures a Manager.
type Option func(*Manager)

// DefaultTTL is how long a lease lasts without renewal unless WithTTL says
// otherwise.
const DefaultTTL = 30 * time.Second

// WithTTL sets how long a lease lasts without renewal (default DefaultTTL).
// Leases are renewed every TTL/3.
func WithTTL(d time.Duration) Option { return func(m *Manager) { m.ttl = d } }

// WithTracerProvider sets the tracer provider (default: the global one).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(m *Manager) { m.tracer = tp.Tracer("github.com/stevedore-dev/stevedore/internal/postgres/leases") }
}

// New returns a Manager that takes leases in the name of holder.
func New(pool *pgxpool.Pool, holder string, opts ...Option) *Manager {
	m := &Manager{pool: pool, holder: holder, ttl: DefaultTTL, instance: newInstance(), live: map[string]int64{}}
	for _, o := range opts {
		o(m)
	}
	if m.tracer == nil {
		m.tracer = otel.Tracer("github.com/stevedore-dev/stevedore/internal/postgres/leases")
	}
	return m
}

// TTL returns the lease duration.
func (m *Manager) TTL() time.Duration { return m.ttl }

// Lease is a held lease. Its Context is cancelled when the lease is lost or
// released.
type Lease struct {
	Digest string
	Fence  int64

	m      *Manager
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	once   sync.Once
}

// Held is a held lease as its users see it; *Lease implements it.
type Held interface {
	// Context is cancelled when the lease is lost (cause ErrLost) or
	// released.
	Context() context.Context
	// Lost reports whether the lease was lost.
	Lost() bool
	// Token is the lease's fence: every write under the lease carries it.
	Token() int64
	// Release gives the lease up.
	Release(ctx context.Context) error
}

// Token returns the lease's fence.
func (l *Lease) Token() int64 { return l.Fence }

// Take is Acquire, returning the lease as a Held: for users that take leases
// through an interface of their own (internal/worker).
func (m *Manager) Take(ctx context.Context, digest string) (Held, error) {
	l, err := m.Acquire(ctx, digest)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Acquire takes the lease on digest, or returns a *BusyError when another
// holder has an unexpired one. A lease this Manager took earlier but no
// longer holds (lost to failed renewals, as across a Postgres restart, or
// abandoned when its context ended) is taken over at once, with a new fence:
// only a live lease of this Manager, or another's unexpired one, is busy.
// The lease is renewed in the background every TTL/3 until Release; when a
// renewal finds it lost, or renewals keep failing until the lease would have
// expired, the lease's context is cancelled with ErrLost. The lease's context
// derives from ctx. The lease is taken durably: its fence is never handed out
// again, even across a crash of Postgres.
func (m *Manager) Acquire(ctx context.Context, digest string) (*Lease, error) {
	return m.acquire(ctx, digest, true)
}

// AcquireVolatile is Acquire for a lease that only saves work (a layer
// claim, internal/layer/claim), never one whose fence guards writes: it is
// committed without waiting for Postgres to flush it to disk (saving a
// flush), so a crash of Postgres in the next moments may forget it, as if it
// had not been taken. Any later durable commit (every fenced write of a run
// that depends on it) flushes it first.
func (m *Manager) AcquireVolatile(ctx context.Context, digest string) (*Lease, error) {
	return m.acquire(ctx, digest, false)
}

func (m *Manager) acquire(ctx context.Context, digest string, durable bool) (*Lease, error) {
	parent := ctx
	ctx, span := m.tracer.Start(ctx, "lease.acquire", trace.WithAttributes(attribute.String("stevedore.digest", digest),
		attribute.Bool("stevedore.lease.durable", durable)))
	defer span.End()
	m.mu.Lock()
	_, live := m.live[digest]
	if !live {
		m.live[digest] = 0 // reserved until the row says
	}
	m.mu.Unlock()
	var fence int64
	err := m.pool.QueryRow(ctx, `
INSERT INTO lease (digest, holder, instance, fence, acquired_at, expires_at)
SELECT $1, $2, $4, nextval('lease_fence_seq'), now(), now() + $3 * interval '1 millisecond'
 WHERE CASE WHEN $6 THEN true ELSE `+noSync+` END
ON CONFLICT (digest) DO UPDATE
   SET holder = excluded.holder, instance = excluded.instance, fence = excluded.fence,
       acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
 WHERE lease.expires_at <= now() OR (lease.instance = excluded.instance AND NOT $5)
RETURNING fence`, digest, m.holder, m.ttl.Milliseconds(), m.instance, live, durable).Scan(&fence)
	m.mu.Lock()
	switch {
	case err == nil:
		m.live[digest] = fence
	case !live && m.live[digest] == 0:
		delete(m.live, digest)
	}
	m.mu.Unlock()
	if errors.Is(err, pgx.ErrNoRows) {
		busy := &BusyError{Digest: digest}
		var remainingMS float64
		var instance string
		err := m.pool.QueryRow(ctx, `SELECT holder, instance, GREATEST(EXTRACT(EPOCH FROM expires_at - now()) * 1000, 0) FROM lease WHERE digest = $1`, digest).Scan(&busy.Holder, &instance, &remainingMS)
		if errors.Is(err, pgx.ErrNoRows) {
			// Released in between: the caller may try again at once.
			return nil, busy
		}
		if err != nil {
			return nil, fmt.Errorf("acquire lease on %s: read holder: %w", digest, err)
		}
		busy.Self = instance == m.instance
		busy.Remaining = time.Duration(remainingMS * float64(time.Millisecond))
		span.SetAttributes(attribute.Bool("stevedore.lease.busy", true))
		return nil, busy
	}
	if err != nil {
		return nil, fmt.Errorf("acquire lease on %s: %w", digest, err)
	}
	span.SetAttributes(attribute.Int64("stevedore.lease.fence", fence))
	lctx, cancel := context.WithCancelCause(parent)
	l := &Lease{Digest: digest, Fence: fence, m: m, ctx: lctx, cancel: cancel, done: make(chan struct{})}
	go l.keep()
	return l, nil
}

// newInstance returns a random name for a Manager.
func newInstance() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// forget drops l from its Manager's live leases: it is no longer renewed.
func (l *Lease) forget() {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.m.live[l.Digest] == l.Fence {
		delete(l.m.live, l.Digest)
	}
}

// Context is cancelled when the lease is lost or released; context.Cause
// tells which.
func (l *Lease) Context() context.Context { return l.ctx }

// Lost reports whether the lease was lost (as opposed to released or still held).
func (l *Lease) Lost() bool { return errors.Is(context.Cause(l.ctx), ErrLost) }

// keep renews the lease every TTL/3 until it is released, lost, or the
// caller's context is cancelled.
func (l *Lease) keep() {
	defer close(l.done)
	defer l.forget()
	ttl := l.m.ttl
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	deadline := time.Now().Add(ttl) // by the local clock, conservatively
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		rctx, cancel := context.WithTimeout(l.ctx, ttl/3)
		tag, err := l.m.pool.Exec(rctx, `
UPDATE lease SET expires_at = now() + $3 * interval '1 millisecond'
 WHERE digest = $1 AND fence = $2 AND expires_at > now()`, l.Digest, l.Fence, ttl.Milliseconds())
		cancel()
		switch {
		case err == nil && tag.RowsAffected() == 1:
			deadline = start.Add(ttl)
		case err == nil:
			l.cancel(fmt.Errorf("renew lease on %s (fence %d): %w", l.Digest, l.Fence, ErrLost))
			return
		case time.Now().After(deadline):
			l.cancel(fmt.Errorf("renew lease on %s (fence %d): %w: %v", l.Digest, l.Fence, ErrLost, err))
			return
		}
	}
}

// Release stops renewal and gives the lease up, if it is still held. It is
// safe to call more than once. The release is committed without waiting for
// Postgres to flush it to disk: a crash of Postgres in the next moments may
// forget it, which only leaves the lease to expire.
func (l *Lease) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		l.cancel(errReleased)
		<-l.done
		_, err = l.m.pool.Exec(ctx, `DELETE FROM lease WHERE digest = $1 AND fence = $2 AND `+noSync, l.Digest, l.Fence)
		if err != nil {
			err = fmt.Errorf("release lease on %s: %w", l.Digest, err)
		}
	})
	return err
}

var errReleased = errors.New("lease released")

// noSync is a condition, always true, that makes the transaction of the
// statement holding it commit without waiting for the flush of its WAL
// (synchronous_commit off, for this transaction only).
const noSync = `set_config('synchronous_commit', 'off', true) IS NOT NULL`

// Querier is what Check needs: a transaction, usually.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Check verifies, inside the caller's transaction, that fence still holds the
// lease on digest, and locks the lease row until the transaction ends so that
// no one can take the lease over before the caller commits. It returns an error
// wrapping ErrLost when the lease is held by a newer fence or has expired.
func Check(ctx context.Context, tx Querier, digest string, fence int64) error {
	var ok bool
	err := tx.QueryRow(ctx, checkSQL, digest, fence).Scan(&ok)
	return checked(digest, fence, ok, err)
}

// QueueCheck queues Check first on b, a batch sent in the caller's
// transaction: the batch's results (BatchResults.Close) end with Check's
// error, before those of the statements queued after it, which the caller's
// transaction must then not commit.
func QueueCheck(b *pgx.Batch, digest string, fence int64) {
	b.Queue(checkSQL, digest, fence).QueryRow(func(row pgx.Row) error {
		var ok bool
		err := row.Scan(&ok)
		return checked(digest, fence, ok, err)
	})
}

const checkSQL = `SELECT expires_at > now() FROM lease WHERE digest = $1 AND fence = $2 FOR SHARE`

// checked is Check's answer to its statement's result: ok, or err.
func checked(digest string, fence int64, ok bool, err error) error {
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !ok) {
		return fmt.Errorf("write for %s with fence %d refused: %w", digest, fence, ErrLost)
	}
	if err != nil {
		return fmt.Errorf("check lease on %s: %w", digest, err)
	}
	return nil
}
