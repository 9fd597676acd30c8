package webhooks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/report"
)

// pendingStore keeps the references whose lookup failed, in table
// webhook_pending (internal/postgres/migrations/00005_webhook_pending.sql). All times come
// from the database's clock.
type pendingStore struct {
	pool *pgxpool.Pool
}

// pendingRow is a reference claimed for a retry.
type pendingRow struct {
	ID        int64
	Source    Source
	Reference string
	Attempts  int
}

var errNoDatabase = errors.New("no database to keep it in")

// addAll records the first failed lookups of one request, in one
// statement: refs[i] failed with errs[i] and is retried after delay(1). A
// reference already pending keeps its schedule; one that was given up is
// started again. The references are distinct.
func (p *pendingStore) addAll(ctx context.Context, src Source, refs, errs []string, delay func(int) time.Duration) error {
	if p.pool == nil {
		return errNoDatabase
	}
	delays := make([]float64, len(refs))
	for i := range delays {
		delays[i] = delay(1).Seconds()
	}
	_, err := p.pool.Exec(ctx, `
INSERT INTO webhook_pending AS p (source, reference, attempts, last_error, next_attempt)
SELECT $1, r.ref, 1, r.err, now() + make_interval(secs => r.delay)
  FROM unnest($2::text[], $3::text[], $4::float8[]) AS r(ref, err, delay)
ON CONFLICT (reference) DO UPDATE SET
    last_error   = excluded.last_error,
    updated_at   = now(),
    attempts     = CASE WHEN p.given_up_at IS NULL THEN p.attempts ELSE 1 END,
    next_attempt = CASE WHEN p.given_up_at IS NULL THEN p.next_attempt ELSE excluded.next_attempt END,
    given_up_at  = NULL`,
		string(src), refs, errs, delays)
	if err != nil {
		return fmt.Errorf("store %d pending webhook references (first %s): %w", len(refs), refs[0], err)
	}
	return nil
}

// claim takes the most overdue row that no other replica holds (FOR UPDATE
// SKIP LOCKED) and moves its next attempt lease into the future, so that a
// replica that dies mid-attempt only delays it. Rows of the registries in
// skip (throttled) are left. nil: nothing is due.
func (p *pendingStore) claim(ctx context.Context, lease time.Duration, skip []string) (*pendingRow, error) {
	var row pendingRow
	var src string
	err := p.pool.QueryRow(ctx, `
UPDATE webhook_pending SET next_attempt = now() + make_interval(secs => $1), updated_at = now()
WHERE id = (
    SELECT id FROM webhook_pending
    WHERE given_up_at IS NULL AND next_attempt <= now() AND `+registryKey+` <> ALL($2::text[])
    ORDER BY next_attempt
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING id, source, reference, attempts`, lease.Seconds(), nonNil(skip)).Scan(&row.ID, &src, &row.Reference, &row.Attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim a pending webhook reference: %w", err)
	}
	row.Source = Source(src)
	return &row, nil
}

// done removes a row whose retry succeeded.
func (p *pendingStore) done(ctx context.Context, id int64) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM webhook_pending WHERE id = $1`, id); err != nil {
		return fmt.Errorf("remove pending webhook reference %d: %w", id, err)
	}
	return nil
}

// failed records one more failed attempt: the next one after delay, or
// none when giveUp.
func (p *pendingStore) failed(ctx context.Context, id int64, lookupErr string, delay time.Duration, giveUp bool) error {
	_, err := p.pool.Exec(ctx, `
UPDATE webhook_pending SET
    attempts     = attempts + 1,
    last_error   = $2,
    next_attempt = now() + make_interval(secs => $3),
    updated_at   = now(),
    given_up_at  = CASE WHEN $4 THEN now() END
WHERE id = $1`, id, lookupErr, delay.Seconds(), giveUp)
	if err != nil {
		return fmt.Errorf("record failed retry of pending webhook reference %d: %w", id, err)
	}
	return nil
}

// backoff is the delay after the n-th failed attempt (n >= 1): RetryBase
// doubled n-1 times, at most RetryMax, with up to a fifth of jitter either
// way.
func (c *Config) backoff(n int) time.Duration {
	d := c.RetryBase
	for i := 1; i < n && d < c.RetryMax; i++ {
		d *= 2
	}
	d = min(d, c.RetryMax)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return max(d+jitter, time.Millisecond)
}

// RunRetries retries the stored lookups until ctx ends: every poll interval
// it takes each due row (one replica per row: rows are claimed with FOR
// UPDATE SKIP LOCKED, so every dispatcher replica can run the loop), at most
// RetryRate a second per registry (a registry over its rate is skipped
// until it has one again, and the others' rows go on),
// resolves and indexes the reference again, and then deletes the row or
// records the failure, its error and the next attempt with backoff. After
// MaxAttempts the row is kept, marked given up, for an operator to see; a
// new event for the same reference starts it again. It does nothing when no
// source is enabled.
func (h *Handler) RunRetries(ctx context.Context) {
	if !h.cfg.AnyEnabled() || h.pending.pool == nil {
		return
	}
	t := time.NewTimer(h.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := h.cfg.PollInterval
		for ctx.Err() == nil {
			skip, wait := h.limits.throttled(time.Now())
			did, err := h.retryOne(ctx, skip)
			if err != nil {
				if ctx.Err() == nil {
					h.log.ErrorContext(ctx, "webhook retries", "error", err)
				}
				break
			}
			if !did {
				if len(skip) > 0 {
					// Rows of a throttled registry may be due: look
					// again when it has a retry allowed.
					next = min(next, max(wait, time.Millisecond))
				}
				break
			}
		}
		t.Reset(next)
	}
}

// retryOne retries one due row; false when none was due.
func (h *Handler) retryOne(ctx context.Context, skip []string) (bool, error) {
	row, err := h.pending.claim(ctx, 2*h.cfg.ResolveTimeout+time.Minute, skip)
	if err != nil || row == nil {
		return false, err
	}
	// Usually at once: the registry was not throttled when the row was
	// claimed (another goroutine of this process may have taken its
	// retry since).
	if err := h.limits.limiter(registryOf(row.Reference)).Wait(ctx); err != nil {
		return false, err
	}
	ctx, span := h.tracer.Start(ctx, "webhooks.retry")
	defer span.End()
	span.SetAttributes(attribute.String("stevedore.webhook.source", string(row.Source)),
		attribute.String("stevedore.webhook.reference", row.Reference),
		attribute.Int("stevedore.webhook.attempt", row.Attempts+1))
	rctx, cancel := context.WithTimeout(ctx, h.cfg.ResolveTimeout)
	defer cancel()
	imgs, err := h.retryReference(rctx, row.Reference)
	if ctx.Err() != nil {
		return false, ctx.Err() // shutting down: the claim lapses and another replica takes it
	}
	if err == nil {
		h.log.InfoContext(ctx, "webhook retry succeeded", "source", row.Source, "reference", row.Reference, "attempts", row.Attempts+1, "manifests", len(imgs))
		return true, h.pending.done(ctx, row.ID)
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	attempts := row.Attempts + 1
	giveUp := attempts >= h.cfg.MaxAttempts || errors.Is(err, resolve.ErrInvalid)
	delay := h.cfg.backoff(attempts)
	if giveUp {
		h.log.ErrorContext(ctx, "webhook retry: giving up", "source", row.Source, "reference", row.Reference, "attempts", attempts, "error", err)
	} else {
		h.log.WarnContext(ctx, "webhook retry failed", "source", row.Source, "reference", row.Reference, "attempts", attempts, "next_in", delay.Round(time.Millisecond), "error", err)
	}
	return true, h.pending.failed(ctx, row.ID, err.Error(), delay, giveUp)
}

// retryReference resolves a stored reference (a tag first to its digest)
// and indexes it.
func (h *Handler) retryReference(ctx context.Context, ref string) ([]report.Image, error) {
	if !strings.Contains(ref, "@") {
		d, err := h.resolveTag(ctx, ref)
		if err != nil {
			return nil, err
		}
		tag, err := name.NewTag(ref, name.StrictValidation)
		if err != nil {
			return nil, fmt.Errorf("pending reference %q: %w: %w", ref, resolve.ErrInvalid, err)
		}
		ref = tag.Context().Digest(d).String()
	}
	return h.d.IndexReference(ctx, ref, "")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
