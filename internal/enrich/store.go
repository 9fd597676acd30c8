package enrich

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotLoaded is returned by Get for data that was never loaded.
var ErrNotLoaded = errors.New("enrichment data not loaded")

// ErrUnknownKind is returned for a name that is not one of Kinds.
var ErrUnknownKind = errors.New("unknown enrichment data")

// Dataset is one loaded data set.
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

// Store keeps enrichment data in Postgres.
type Store struct {
	pool  *pgxpool.Pool
	kinds map[string]Kind
}

// NewStore returns a Store for the known kinds.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool, kinds: Kinds()} }

// Load validates raw as data of kind name and, when valid, replaces what was
// loaded. Invalid data is refused with an error saying what is wrong; the
// data loaded before is kept (and the failure recorded on it).
func (s *Store) Load(ctx context.Context, name, source, etag, lastModified string, raw []byte) (*Dataset, error) {
	k, ok := s.kinds[name]
	if !ok {
		return nil, fmt.Errorf("load %q: %w (known: %s, %s)", name, ErrUnknownKind, RepositoryCPE, ContainerRepositories)
	}
	entries, err := k.Validate(raw)
	if err != nil {
		err = fmt.Errorf("load %s from %s: refused, the data loaded before is kept: %w", name, source, err)
		s.recordError(ctx, name, err)
		return nil, err
	}
	sum := sha256.Sum256(raw)
	d := &Dataset{Name: name, Source: source, ETag: etag, LastModified: lastModified,
		Digest: "sha256:" + hex.EncodeToString(sum[:]), Entries: entries}
	err = s.pool.QueryRow(ctx, `
INSERT INTO enrichment (name, source, etag, last_modified, digest, entries, data, loaded_at, checked_at, last_error)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, now(), now(), '')
ON CONFLICT (name) DO UPDATE SET
    source = excluded.source, etag = excluded.etag, last_modified = excluded.last_modified,
    digest = excluded.digest, entries = excluded.entries, data = excluded.data,
    loaded_at = now(), checked_at = now(), last_error = ''
RETURNING loaded_at, checked_at`, name, source, etag, lastModified, d.Digest, entries, string(raw)).Scan(&d.LoadedAt, &d.CheckedAt)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	return d, nil
}

// Confirm records that the source answered "not modified": the loaded data
// is current as of now.
func (s *Store) Confirm(ctx context.Context, name string) error {
	_, err := s.pool.Exec(ctx, `UPDATE enrichment SET loaded_at = now(), checked_at = now(), last_error = '' WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("confirm %s: %w", name, err)
	}
	return nil
}

// recordError notes a failed update on the loaded data, if any.
func (s *Store) recordError(ctx context.Context, name string, cause error) {
	s.pool.Exec(ctx, `UPDATE enrichment SET checked_at = now(), last_error = $2 WHERE name = $1`, name, cause.Error())
}

// RecordError notes a failed update of name.
func (s *Store) RecordError(ctx context.Context, name string, cause error) {
	s.recordError(ctx, name, cause)
}

// Get returns the loaded data of name, or ErrNotLoaded.
func (s *Store) Get(ctx context.Context, name string) (*Dataset, error) {
	d := &Dataset{Name: name}
	var raw string
	err := s.pool.QueryRow(ctx, `
SELECT source, etag, last_modified, digest, entries, data::text, loaded_at, checked_at, last_error
  FROM enrichment WHERE name = $1`, name).Scan(&d.Source, &d.ETag, &d.LastModified, &d.Digest, &d.Entries, &raw, &d.LoadedAt, &d.CheckedAt, &d.LastError)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotLoaded)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	d.Raw = []byte(raw)
	return d, nil
}

// Meta returns what is known of name without its data: the source, the ETag
// and Last-Modified for a conditional request, ages. ErrNotLoaded if never
// loaded.
func (s *Store) Meta(ctx context.Context, name string) (*Dataset, error) {
	d := &Dataset{Name: name}
	err := s.pool.QueryRow(ctx, `
SELECT source, etag, last_modified, digest, entries, loaded_at, checked_at, last_error
  FROM enrichment WHERE name = $1`, name).Scan(&d.Source, &d.ETag, &d.LastModified, &d.Digest, &d.Entries, &d.LoadedAt, &d.CheckedAt, &d.LastError)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotLoaded)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return d, nil
}

// Status lists every known kind with what is loaded of it (a zero Dataset
// with only Name for one never loaded), and the database's time now.
func (s *Store) Status(ctx context.Context) ([]Dataset, time.Time, error) {
	var now time.Time
	if err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return nil, now, fmt.Errorf("enrichment status: %w", err)
	}
	var out []Dataset
	for _, name := range slices.Sorted(maps.Keys(s.kinds)) {
		d, err := s.Meta(ctx, name)
		if errors.Is(err, ErrNotLoaded) {
			out = append(out, Dataset{Name: name})
			continue
		}
		if err != nil {
			return nil, now, err
		}
		out = append(out, *d)
	}
	return out, now, nil
}

// Describe returns the description of kind name.
func (s *Store) Describe(name string) string { return s.kinds[name].Description }
