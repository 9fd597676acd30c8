package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stevedore-dev/stevedore/report"
)

// Reindex is a finished report to index again.
type Reindex struct {
	Digest report.Digest
	Job    []byte
	// Forced is set when an operator asked for it (the report may be
	// current).
	Forced bool
	// RequestedAt is when its manifest was last requested: with Digest,
	// its place in the sweep's order (see ReportsToReindex's after).
	RequestedAt time.Time
}

// ReportsToReindex returns up to limit finished reports to index again: those
// made by a scanner-set state other than current, and those an operator
// asked to re-index, skipping reports queued for re-index within the last
// requeueAfter. Most recently requested first (ties by digest, descending).
// When after is not nil, only those after after in that order, and those an
// operator asked for before it: a sweep passes the last report of its
// previous batch, so that a batch reads from where the one before stopped,
// not past every report queued before it (migration 00021 serves the order),
// and a report asked for is not left to the next pass (one asked for is never
// queued yet: RequestReindex clears reindex_queued_at, MarkReindexQueued
// reindex_requested). Its candidates are also read through indexes
// (migration 00020: scanner_state < or > current, and the requested ones),
// so that a round with nothing to do reads nothing.
func (s *Store) ReportsToReindex(ctx context.Context, current string, requeueAfter time.Duration, after *Reindex, limit int) ([]Reindex, error) {
	q := reindexQuery + ` LIMIT $3`
	fromAt, fromHash := pgtype.Timestamptz{Valid: true, InfinityModifier: pgtype.Infinity}, ""
	if after != nil {
		q = `(` + reindexQuery + ` LIMIT $3) UNION ALL (` + reindexAskedAbove + ` LIMIT $3)` + reindexOrder + ` LIMIT $3`
		fromAt, fromHash = pgtype.Timestamptz{Valid: true, Time: after.RequestedAt}, string(after.Digest)
	}
	rows, err := s.pool.Query(ctx, q, current, requeueAfter.Milliseconds(), limit, fromAt, fromHash)
	if err != nil {
		return nil, fmt.Errorf("find reports to re-index: %w", err)
	}
	defer rows.Close()
	var out []Reindex
	for rows.Next() {
		var r Reindex
		var d, job string
		if err := rows.Scan(&d, &job, &r.Forced, &r.RequestedAt); err != nil {
			return nil, fmt.Errorf("find reports to re-index: %w", err)
		}
		r.Digest, r.Job = report.Digest(d), []byte(job)
		out = append(out, r)
	}
	return out, rows.Err()
}

// The sweep's queries (ReportsToReindex): the candidates after ($4, $5) in
// the sweep's order, and those asked for at or above it (a pass started
// below them).
const (
	reindexOrder = `
 ORDER BY requested_at DESC, manifest_hash DESC`
	reindexQuery = `
SELECT manifest_hash, job::text, reindex_requested, requested_at
  FROM index_report
 WHERE state = 'IndexFinished' AND job IS NOT NULL
   AND (scanner_state < $1 OR scanner_state > $1 OR reindex_requested)
   AND (reindex_queued_at IS NULL OR reindex_queued_at < now() - $2 * interval '1 millisecond')
   AND (requested_at, manifest_hash) < ($4, $5)` + reindexOrder
	reindexAskedAbove = `
SELECT manifest_hash, job::text, reindex_requested, requested_at
  FROM index_report
 WHERE state = 'IndexFinished' AND job IS NOT NULL AND reindex_requested
   AND requested_at >= $4 AND (requested_at, manifest_hash) >= ($4, $5)` + reindexOrder
)

// MarkReindexQueued records that re-index jobs for ds were published now, in
// one statement (the sweep marks a batch at once: one round trip and one
// commit, not one per report). Unknown digests are ignored.
func (s *Store) MarkReindexQueued(ctx context.Context, ds []report.Digest) error {
	if len(ds) == 0 {
		return nil
	}
	hashes := make([]string, len(ds))
	for i, d := range ds {
		hashes[i] = string(d)
	}
	_, err := s.pool.Exec(ctx, `UPDATE index_report SET reindex_requested = false, reindex_queued_at = now() WHERE manifest_hash = ANY($1)`, hashes)
	if err != nil {
		return fmt.Errorf("mark %d reports queued for re-index: %w", len(ds), err)
	}
	return nil
}

// RequestReindex asks for the given manifests' reports (all finished ones
// when digests is empty and all is set; the stale ones, made by another state
// than current, when stale is set) to be indexed again by the sweep, at once.
// It returns how many reports it marked.
func (s *Store) RequestReindex(ctx context.Context, digests []report.Digest, all, stale bool, current string) (int64, error) {
	hashes := make([]string, len(digests))
	for i, d := range digests {
		hashes[i] = string(d)
	}
	tag, err := s.pool.Exec(ctx, `
UPDATE index_report
   SET reindex_requested = (manifest_hash = ANY($1) OR $2), reindex_queued_at = NULL
 WHERE state = 'IndexFinished'
   AND (manifest_hash = ANY($1) OR $2 OR ($3 AND scanner_state <> $4))`, hashes, all, stale, current)
	if err != nil {
		return 0, fmt.Errorf("request re-index: %w", err)
	}
	return tag.RowsAffected(), nil
}
