package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Enrichment data sets (table enrichment), loaded ahead of time for the
// enrichers of internal/enrich.

// Dataset is one stored enrichment data set.
type Dataset struct {
	Name         string
	Source       string
	ETag         string
	LastModified string
	Digest       string
	Entries      int
	// LoadedAt is when the data was last confirmed current: loaded,
	// imported, or answered "not modified" by its source.
	LoadedAt time.Time
	// CheckedAt is when the source was last asked.
	CheckedAt time.Time
	// LastError is the last failed update, if the last check failed.
	LastError string
	// Raw is the data (empty in Status).
	Raw []byte
}

// PutEnrichment replaces the stored data set d.Name with d (its Raw, a JSON
// document), and sets d.LoadedAt and d.CheckedAt to now.
func (s *Store) PutEnrichment(ctx context.Context, d *Dataset) error {
	err := s.pool.QueryRow(ctx, `
INSERT INTO enrichment (name, source, etag, last_modified, digest, entries, data, loaded_at, checked_at, last_error)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, now(), now(), '')
ON CONFLICT (name) DO UPDATE SET
    source = excluded.source, etag = excluded.etag, last_modified = excluded.last_modified,
    digest = excluded.digest, entries = excluded.entries, data = excluded.data,
    loaded_at = now(), checked_at = now(), last_error = ''
RETURNING loaded_at, checked_at`, d.Name, d.Source, d.ETag, d.LastModified, d.Digest, d.Entries, string(d.Raw)).Scan(&d.LoadedAt, &d.CheckedAt)
	if err != nil {
		return fmt.Errorf("store %s: %w", d.Name, err)
	}
	return nil
}

// ConfirmEnrichment records that the source of name answered "not
// modified": the stored data is current as of now.
func (s *Store) ConfirmEnrichment(ctx context.Context, name string) error {
	_, err := s.pool.Exec(ctx, `UPDATE enrichment SET loaded_at = now(), checked_at = now(), last_error = '' WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("confirm %s: %w", name, err)
	}
	return nil
}

// EnrichmentError notes a failed update on the stored data of name, if any.
func (s *Store) EnrichmentError(ctx context.Context, name, cause string) error {
	_, err := s.pool.Exec(ctx, `UPDATE enrichment SET checked_at = now(), last_error = $2 WHERE name = $1`, name, cause)
	if err != nil {
		return fmt.Errorf("record the failed update of %s: %w", name, err)
	}
	return nil
}

// Enrichment returns the stored data set name, with its data when withData,
// or an error wrapping ErrNotFound.
func (s *Store) Enrichment(ctx context.Context, name string, withData bool) (*Dataset, error) {
	d := &Dataset{Name: name}
	var raw string
	dest := []any{&d.Source, &d.ETag, &d.LastModified, &d.Digest, &d.Entries, &d.LoadedAt, &d.CheckedAt, &d.LastError}
	data := "''"
	if withData {
		data = "data::text"
	}
	err := s.pool.QueryRow(ctx, `
SELECT source, etag, last_modified, digest, entries, loaded_at, checked_at, last_error, `+data+`
  FROM enrichment WHERE name = $1`, name).Scan(append(dest, &raw)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if withData {
		d.Raw = []byte(raw)
	}
	return d, nil
}

// Now returns the database's time.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return now, err
	}
	return now, nil
}
