package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stevedore-dev/stevedore/report"
)

// PartialSummary describes one partial report for operators.
type PartialSummary struct {
	Digest         report.Digest          `json:"manifest_hash"`
	Reasons        []report.PartialReason `json:"reasons"`
	WaitingFor     []string               `json:"waiting_for"`
	Attempt        int                    `json:"attempt"`
	NextRetry      *time.Time             `json:"next_retry,omitempty"`
	RetryRequested bool                   `json:"retry_requested"`
	UpdatedAt      time.Time              `json:"updated_at"`
}

// ListPartial lists partial reports, most recently requested first.
func (s *Store) ListPartial(ctx context.Context, limit int) ([]PartialSummary, error) {
	rows, err := s.pool.Query(ctx, `
SELECT manifest_hash, report->'partial', waiting_for, attempt, next_retry, retry_requested, updated_at
  FROM index_report WHERE state = 'IndexPartial'
 ORDER BY requested_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list partial reports: %w", err)
	}
	defer rows.Close()
	out := []PartialSummary{}
	for rows.Next() {
		var p PartialSummary
		var d string
		var reasons []byte
		if err := rows.Scan(&d, &reasons, &p.WaitingFor, &p.Attempt, &p.NextRetry, &p.RetryRequested, &p.UpdatedAt); err != nil {
			return nil, fmt.Errorf("list partial reports: %w", err)
		}
		p.Digest = report.Digest(d)
		if len(reasons) > 0 {
			json.Unmarshal(reasons, &p.Reasons)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// RequestRetry asks for a partial report to be retried now (the requeue
// sweep publishes it). It reports whether d has a partial report.
func (s *Store) RequestRetry(ctx context.Context, d report.Digest) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE index_report SET retry_requested = true WHERE manifest_hash = $1 AND state = 'IndexPartial'`, string(d))
	if err != nil {
		return false, fmt.Errorf("request retry of %s: %w", d, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Requeue is a partial report to run again now.
type Requeue struct {
	Digest  report.Digest
	Job     []byte
	Attempt int
}

// PartialsToRequeue returns up to limit partial reports to run again now:
// those an operator asked to retry, and those waiting for enrichment data
// that was loaded (or confirmed) after the report was written or last
// requeued. Most recently requested first.
func (s *Store) PartialsToRequeue(ctx context.Context, limit int) ([]Requeue, error) {
	rows, err := s.pool.Query(ctx, `
SELECT r.manifest_hash, r.job::text, r.attempt
  FROM index_report r
 WHERE r.state = 'IndexPartial' AND r.job IS NOT NULL
   AND (r.retry_requested OR EXISTS (
        SELECT 1 FROM enrichment e
         WHERE e.name = ANY (r.waiting_for)
           AND e.loaded_at > greatest(r.updated_at, coalesce(r.requeued_at, r.updated_at))))
 ORDER BY r.requested_at DESC
 LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("find partial reports to requeue: %w", err)
	}
	defer rows.Close()
	var out []Requeue
	for rows.Next() {
		var q Requeue
		var d, job string
		if err := rows.Scan(&d, &job, &q.Attempt); err != nil {
			return nil, fmt.Errorf("find partial reports to requeue: %w", err)
		}
		q.Digest, q.Job = report.Digest(d), []byte(job)
		out = append(out, q)
	}
	return out, rows.Err()
}

// MarkRequeued records that a partial report's retry was published now.
func (s *Store) MarkRequeued(ctx context.Context, d report.Digest) error {
	_, err := s.pool.Exec(ctx, `
UPDATE index_report SET retry_requested = false, requeued_at = now(), next_retry = now()
 WHERE manifest_hash = $1 AND state = 'IndexPartial'`, string(d))
	if err != nil {
		return fmt.Errorf("mark %s requeued: %w", d, err)
	}
	return nil
}

// PartialStat summarises the partial reports waiting for one data set.
type PartialStat struct {
	WaitingFor string
	Count      int64
	MaxAttempt int64
	// Overdue counts those whose next retry is more than a minute past.
	Overdue int64
}

// PartialStats summarises stored partial reports by the data they wait for
// ("" for none named), for metrics.
func (s *Store) PartialStats(ctx context.Context) ([]PartialStat, error) {
	rows, err := s.pool.Query(ctx, `
SELECT coalesce(w.data, ''), count(*), coalesce(max(r.attempt), 0),
       count(*) FILTER (WHERE r.next_retry < now() - interval '1 minute')
  FROM index_report r
  LEFT JOIN LATERAL unnest(r.waiting_for) AS w(data) ON true
 WHERE r.state = 'IndexPartial'
 GROUP BY 1 ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("summarise partial reports: %w", err)
	}
	defer rows.Close()
	var out []PartialStat
	for rows.Next() {
		var p PartialStat
		if err := rows.Scan(&p.WaitingFor, &p.Count, &p.MaxAttempt, &p.Overdue); err != nil {
			return nil, fmt.Errorf("summarise partial reports: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
