package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/report"
)

// BodyChunkSize is the size of the chunks a report's encoded answers are
// stored in: what one streamed answer holds in memory at once.
const BodyChunkSize = 256 << 10

// Body is a stored encoded answer of a report (see OpenBody).
type Body struct {
	ID   int64
	View string
	// State, ScannerState and NextRetry are those of the report encoded
	// (what Dispatcher.Current needs).
	State        report.State
	ScannerState string
	NextRetry    *time.Time
	// ETag is the entity tag of the answer's JSON, quoted (see
	// reportbody.Body).
	ETag string
	// Encoding is the content coding of the bytes stored
	// (reportbody.EncodingGzip, or EncodingIdentity for answers stored
	// before they were compressed).
	Encoding string
	// Size is the length of the bytes stored; Chunks how many chunks hold
	// them; IdentitySize the length of the JSON they encode.
	Size         int64
	Chunks       int
	IdentitySize int64
	// NotModified is set when the ETag is one of those given to OpenBody:
	// First is then nil, and no chunk was read.
	NotModified bool
	// First is the first chunk.
	First []byte
}

// OpenBody returns the stored encoding of the report of d in the first of
// views that has one, and its first chunk unless its ETag is one of etags
// (quoted) or anyETag is set (If-None-Match: *): then NotModified is set and
// no chunk is read. It returns ErrNotFound when the report has no current
// encoding in those views (no report, a report not terminal, or one stored
// before encodings were kept); Report then tells which.
func (s *Store) OpenBody(ctx context.Context, d report.Digest, views, etags []string, anyETag bool) (*Body, error) {
	b := new(Body)
	err := s.pool.QueryRow(ctx, `
SELECT b.id, b.view, r.state, r.scanner_state, r.next_retry, b.etag, b.encoding, b.size, b.chunks,
       coalesce(b.identity_size, b.size),
       CASE WHEN $4 OR b.etag = ANY ($3) THEN NULL ELSE c.data END
  FROM report_body b
  JOIN index_report r ON r.manifest_hash = b.manifest_hash AND r.updated_at = b.report_updated_at
  LEFT JOIN report_body_chunk c ON c.body_id = b.id AND c.seq = 0
 WHERE b.manifest_hash = $1 AND b.view = ANY ($2)
 ORDER BY array_position($2, b.view)
 LIMIT 1`, string(d), views, nonNil(etags), anyETag).Scan(&b.ID, &b.View, &b.State, &b.ScannerState, &b.NextRetry, &b.ETag, &b.Encoding, &b.Size, &b.Chunks, &b.IdentitySize, &b.First)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("stored answer of %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the stored answer of %s: %w", d, err)
	}
	b.NotModified = anyETag || slices.Contains(etags, b.ETag)
	if !b.NotModified && b.First == nil && b.Chunks > 0 {
		return nil, fmt.Errorf("stored %s answer of %s: its first chunk is missing", b.View, d)
	}
	return b, nil
}

// BodyChunk returns chunk seq (from 0) of the stored answer id. It is an
// error wrapping ErrNotFound when the answer was replaced since OpenBody
// (the report was written again): the answer being streamed cannot be
// finished.
func (s *Store) BodyChunk(ctx context.Context, id int64, seq int) ([]byte, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM report_body_chunk WHERE body_id = $1 AND seq = $2`, id, seq).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("chunk %d of stored answer %d: replaced since: %w", seq, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read chunk %d of stored answer %d: %w", seq, id, err)
	}
	return data, nil
}

// StoreBodies stores the encoded answers of r, a terminal report read from
// the store (so r.UpdatedAt is its row's), for reports written before
// encodings were kept. It stores nothing when the report was written again
// since r was read, or when its answers are stored already.
func (s *Store) StoreBodies(ctx context.Context, r *report.Report, bodies []reportbody.Body) error {
	if !r.State.Terminal() {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var at time.Time
		err := tx.QueryRow(ctx, `SELECT updated_at FROM index_report WHERE manifest_hash = $1 FOR UPDATE`, string(r.Hash)).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if !at.Equal(r.UpdatedAt) {
			return nil
		}
		return writeBodies(ctx, tx, r.Hash, bodies)
	})
	if err != nil {
		return fmt.Errorf("store the answers of %s: %w", r.Hash, err)
	}
	return nil
}

// writeBodies replaces the stored answers of manifest d with bodies, the
// encodings of its report as stored now.
func writeBodies(ctx context.Context, tx pgx.Tx, d report.Digest, bodies []reportbody.Body) error {
	if err := deleteBodies(ctx, tx, d); err != nil {
		return err
	}
	for _, b := range bodies {
		if err := writeBody(ctx, tx, d, b); err != nil {
			return err
		}
	}
	return nil
}

// deleteBodies removes the stored answers of manifest d.
func deleteBodies(ctx context.Context, tx pgx.Tx, d report.Digest) error {
	if _, err := tx.Exec(ctx, `DELETE FROM report_body WHERE manifest_hash = $1`, string(d)); err != nil {
		return fmt.Errorf("remove the stored answers of %s: %w", d, err)
	}
	return nil
}

// writeBody stores b, an answer of manifest d's report as stored now, in
// chunks of BodyChunkSize, with its content coding.
func writeBody(ctx context.Context, tx pgx.Tx, d report.Digest, b reportbody.Body) error {
	if b.Encoding != reportbody.EncodingIdentity && b.Encoding != reportbody.EncodingGzip {
		return fmt.Errorf("store the %s answer of %s: unknown content coding %q", b.View, d, b.Encoding)
	}
	n := (len(b.Data) + BodyChunkSize - 1) / BodyChunkSize
	chunks := make([][]byte, n)
	for i := range n {
		chunks[i] = b.Data[i*BodyChunkSize : min((i+1)*BodyChunkSize, len(b.Data))]
	}
	// One statement (one round trip): the answer's row and its chunks.
	_, err := tx.Exec(ctx, `
WITH b AS (
INSERT INTO report_body (manifest_hash, view, state, etag, size, chunks, report_updated_at, encoding, identity_size)
SELECT $1, $2, r.state, $3, $4, $5, r.updated_at, $7, $8 FROM index_report r WHERE r.manifest_hash = $1
RETURNING id)
INSERT INTO report_body_chunk (body_id, seq, data)
SELECT b.id, t.seq - 1, t.data FROM b, unnest($6::bytea[]) WITH ORDINALITY AS t(data, seq)`,
		string(d), b.View, b.ETag, len(b.Data), n, chunks, b.Encoding, b.IdentitySize)
	if err != nil {
		return fmt.Errorf("store the %s answer of %s: %w", b.View, d, err)
	}
	return nil
}

// writeStored stores the answers of r, a terminal report just written, whose
// row holds updatedJSON as its updated_at: r is encoded as it will be read
// back, and compressed by c. One answer is encoded at a
// time, to hold one in memory at most.
func writeStored(ctx context.Context, tx pgx.Tx, c *reportbody.Compressor, r *report.Report, updatedJSON []byte) error {
	var at time.Time
	if err := json.Unmarshal(updatedJSON, &at); err != nil {
		return fmt.Errorf("store the answers of %s: read back updated_at %s: %w", r.Hash, updatedJSON, err)
	}
	served := *r
	served.UpdatedAt = at
	for _, v := range reportbody.Stored(&served) {
		b, err := c.EncodeStored(&served, v)
		if err != nil {
			return err
		}
		if err := writeBody(ctx, tx, r.Hash, b); err != nil {
			return err
		}
	}
	return nil
}
