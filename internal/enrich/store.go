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

	"github.com/stevedore-dev/stevedore/internal/postgres"
)

// ErrNotLoaded is returned by Get for data that was never loaded.
var ErrNotLoaded = errors.New("enrichment data not loaded")

// ErrUnknownKind is returned for a name that is not one of Kinds.
var ErrUnknownKind = errors.New("unknown enrichment data")

// Dataset is one loaded data set.
type Dataset = postgres.Dataset

// Data is what enrich needs of storage: *postgres.Store implements it
// (table enrichment; its conformance suite holds these promises on a real
// database).
type Data interface {
	// PutEnrichment replaces the stored data set d.Name with d, setting
	// its LoadedAt and CheckedAt.
	PutEnrichment(ctx context.Context, d *Dataset) error
	// ConfirmEnrichment records that the data of name is current now.
	ConfirmEnrichment(ctx context.Context, name string) error
	// EnrichmentError notes a failed update of name.
	EnrichmentError(ctx context.Context, name, cause string) error
	// Enrichment returns the stored data set name (its Raw only when
	// withData), or an error wrapping postgres.ErrNotFound.
	Enrichment(ctx context.Context, name string, withData bool) (*Dataset, error)
	// Now returns the database's time.
	Now(ctx context.Context) (time.Time, error)
}

// Store keeps enrichment data.
type Store struct {
	db    Data
	kinds map[string]Kind
}

// NewStore returns a Store for the known kinds, in db (a *postgres.Store in
// production).
func NewStore(db Data) *Store { return &Store{db: db, kinds: Kinds()} }

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
		Digest: "sha256:" + hex.EncodeToString(sum[:]), Entries: entries, Raw: raw}
	if err := s.db.PutEnrichment(ctx, d); err != nil {
		return nil, err
	}
	// What Load returns never held the data.
	d.Raw = nil
	return d, nil
}

// Confirm records that the source answered "not modified": the loaded data
// is current as of now.
func (s *Store) Confirm(ctx context.Context, name string) error {
	return s.db.ConfirmEnrichment(ctx, name)
}

// recordError notes a failed update on the loaded data, if any.
func (s *Store) recordError(ctx context.Context, name string, cause error) {
	s.db.EnrichmentError(ctx, name, cause.Error())
}

// RecordError notes a failed update of name.
func (s *Store) RecordError(ctx context.Context, name string, cause error) {
	s.recordError(ctx, name, cause)
}

// Get returns the loaded data of name, or ErrNotLoaded.
func (s *Store) Get(ctx context.Context, name string) (*Dataset, error) {
	return s.read(ctx, name, true)
}

// Meta returns what is known of name without its data: the source, the ETag
// and Last-Modified for a conditional request, ages. ErrNotLoaded if never
// loaded.
func (s *Store) Meta(ctx context.Context, name string) (*Dataset, error) {
	return s.read(ctx, name, false)
}

func (s *Store) read(ctx context.Context, name string, withData bool) (*Dataset, error) {
	d, err := s.db.Enrichment(ctx, name, withData)
	if errors.Is(err, postgres.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotLoaded)
	}
	return d, err
}

// Status lists every known kind with what is loaded of it (a zero Dataset
// with only Name for one never loaded), and the database's time now.
func (s *Store) Status(ctx context.Context) ([]Dataset, time.Time, error) {
	now, err := s.db.Now(ctx)
	if err != nil {
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
