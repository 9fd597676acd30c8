package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The references whose webhook lookup failed, kept for retries in table
// webhook_pending (migrations/00005_webhook_pending.sql); internal/api/webhooks
// runs the retries. All times come from the database's clock.

// WebhookPending is a reference claimed for a retry.
type WebhookPending struct {
	ID        int64
	Source    string
	Reference string
	Attempts  int
}

// webhookRegistry is the registry part of a stored reference
// (host[:port]/repo...), as the webhooks' registryOf computes it.
const webhookRegistry = `split_part(reference, '/', 1)`

// AddWebhookPending records the first failed lookups of one request, in one
// statement: refs[i] failed with errs[i] and is retried after delays[i]. A
// reference already pending keeps its schedule; one that was given up is
// started again. The references are distinct.
func (s *Store) AddWebhookPending(ctx context.Context, source string, refs, errs []string, delays []time.Duration) error {
	secs := make([]float64, len(delays))
	for i, d := range delays {
		secs[i] = d.Seconds()
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO webhook_pending AS p (source, reference, attempts, last_error, next_attempt)
SELECT $1, r.ref, 1, r.err, now() + make_interval(secs => r.delay)
  FROM unnest($2::text[], $3::text[], $4::float8[]) AS r(ref, err, delay)
ON CONFLICT (reference) DO UPDATE SET
    last_error   = excluded.last_error,
    updated_at   = now(),
    attempts     = CASE WHEN p.given_up_at IS NULL THEN p.attempts ELSE 1 END,
    next_attempt = CASE WHEN p.given_up_at IS NULL THEN p.next_attempt ELSE excluded.next_attempt END,
    given_up_at  = NULL`,
		source, refs, errs, secs)
	if err != nil {
		return fmt.Errorf("store %d pending webhook references (first %s): %w", len(refs), refs[0], err)
	}
	return nil
}

// ClaimWebhookPending takes the most overdue row that no other replica holds
// (FOR UPDATE SKIP LOCKED) and moves its next attempt lease into the future,
// so that a replica that dies mid-attempt only delays it. Rows of the
// registries in skip (throttled) are left. nil: nothing is due.
func (s *Store) ClaimWebhookPending(ctx context.Context, lease time.Duration, skip []string) (*WebhookPending, error) {
	var row WebhookPending
	err := s.pool.QueryRow(ctx, `
UPDATE webhook_pending SET next_attempt = now() + make_interval(secs => $1), updated_at = now()
WHERE id = (
    SELECT id FROM webhook_pending
    WHERE given_up_at IS NULL AND next_attempt <= now() AND `+webhookRegistry+` <> ALL($2::text[])
    ORDER BY next_attempt
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING id, source, reference, attempts`, lease.Seconds(), nonNil(skip)).Scan(&row.ID, &row.Source, &row.Reference, &row.Attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim a pending webhook reference: %w", err)
	}
	return &row, nil
}

// DeleteWebhookPending removes a row whose retry succeeded.
func (s *Store) DeleteWebhookPending(ctx context.Context, id int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM webhook_pending WHERE id = $1`, id); err != nil {
		return fmt.Errorf("remove pending webhook reference %d: %w", id, err)
	}
	return nil
}

// FailWebhookPending records one more failed attempt: the next one after
// delay, or none when giveUp.
func (s *Store) FailWebhookPending(ctx context.Context, id int64, lookupErr string, delay time.Duration, giveUp bool) error {
	_, err := s.pool.Exec(ctx, `
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
