package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stevedore-dev/stevedore/report"
)

// ErrTooManyRows is returned by AffectedCandidates when more candidate rows
// match than the caller's bound.
var ErrTooManyRows = errors.New("too many candidate packages")

// AffectedCandidate is a package whose name or source name was asked for,
// as claircore's matchers see it (the package and the distribution and
// repositories of each of its environments), with the usable reports that
// hold it. The same package of a shared layer is one candidate for every
// manifest built on it (migration 00023's records).
type AffectedCandidate struct {
	// Manifests are the digests of the usable reports (IndexFinished,
	// IndexPartial) holding the package.
	Manifests []report.Digest
	// Package is the package, without its report's id; nil when it could
	// not be read (Skipped says why).
	Package *report.Package
	// Environments are the package's environments in the reports.
	Environments []*AffectedEnvironment
	// Skipped says what of the stored package could not be read (the
	// package, or its environments, not in the shape Stevedore writes):
	// it is left out, not fatal.
	Skipped []string
}

// AffectedEnvironment is an environment of a package, with what the report
// says of the distribution and repositories it names (without their ids).
type AffectedEnvironment struct {
	Distribution *report.Distribution `json:"distribution"`
	Repositories []*report.Repository `json:"repositories"`
}

// affectedRecords selects the ids of the records (migration 00023) whose
// name or source name, in lower case, is one of $1.
const affectedRecords = `
SELECT id FROM affected_record WHERE name_lower = ANY ($1::text[])
UNION
SELECT id FROM affected_record WHERE source_lower = ANY ($1::text[])`

// affectedManifests selects the usable reports listing one of the records
// $1, with their lists, at most $2.
const affectedManifests = `
SELECT manifest_hash, record_ids FROM manifest_record WHERE record_ids && $1::int[] LIMIT $2`

// AffectedCandidates calls fn with each package, held by usable reports
// (finished or partial), whose name or source name, in lower case, is one
// of names (which must be in lower case): each distinct package once, with
// every manifest holding it. It reads at most maxPackages packages counted
// per manifest (a package in ten manifests counts ten): more is
// ErrTooManyRows, before fn is called. Each package is decoded once.
func (s *Store) AffectedCandidates(ctx context.Context, names []string, maxPackages int, fn func(*AffectedCandidate) error) error {
	if len(names) == 0 {
		return nil
	}
	if maxPackages < 1 {
		return fmt.Errorf("affected candidates: package bound %d: want at least 1", maxPackages)
	}
	// One snapshot for the three reads.
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		held, err := heldRecords(ctx, tx, names, maxPackages)
		if err != nil {
			return err
		}
		if len(held) == 0 {
			return nil
		}
		return readRecords(ctx, tx, held, fn)
	})
}

// heldRecords returns the records of the names held by usable reports, each
// with the manifests holding it; more than maxPackages (record, manifest)
// pairs is ErrTooManyRows.
func heldRecords(ctx context.Context, tx pgx.Tx, names []string, maxPackages int) (map[int32][]report.Digest, error) {
	rows, err := tx.Query(ctx, affectedRecords, names)
	if err != nil {
		return nil, fmt.Errorf("affected candidates: find records: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("affected candidates: find records: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	asked := make(map[int32]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	// No more manifests than packages can be read: at most one past the
	// bound is enough to tell it is passed.
	rows, err = tx.Query(ctx, affectedManifests, ids, maxPackages+1)
	if err != nil {
		return nil, fmt.Errorf("affected candidates: find manifests: %w", err)
	}
	defer rows.Close()
	held := map[int32][]report.Digest{}
	n := 0
	var hash string
	var list []int32
	for rows.Next() {
		if err := rows.Scan(&hash, &list); err != nil {
			return nil, fmt.Errorf("affected candidates: find manifests: %w", err)
		}
		d := report.Digest(hash)
		for _, id := range list {
			if !asked[id] {
				continue
			}
			if n++; n > maxPackages {
				return nil, fmt.Errorf("affected candidates: more than %d packages of %d names: %w", maxPackages, len(names), ErrTooManyRows)
			}
			held[id] = append(held[id], d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("affected candidates: find manifests: %w", err)
	}
	return held, nil
}

// readRecords reads the records held and calls fn with each, decoded once.
func readRecords(ctx context.Context, tx pgx.Tx, held map[int32][]report.Digest, fn func(*AffectedCandidate) error) error {
	ids := make([]int32, 0, len(held))
	for id := range held {
		ids = append(ids, id)
	}
	rows, err := tx.Query(ctx, `SELECT id, body FROM affected_record WHERE id = ANY ($1::int[]) ORDER BY id`, ids)
	if err != nil {
		return fmt.Errorf("affected candidates: read records: %w", err)
	}
	defer rows.Close()
	var id int32
	var body []byte
	for rows.Next() {
		if err := rows.Scan(&id, &body); err != nil {
			return fmt.Errorf("affected candidates: read records: %w", err)
		}
		c := decodeRecord(body)
		c.Manifests = held[id]
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("affected candidates: read records: %w", err)
	}
	return nil
}

// decodeRecord decodes a record's body ({"package", "environments"}); what
// cannot be read is left out and said in Skipped.
func decodeRecord(body []byte) *AffectedCandidate {
	c := &AffectedCandidate{}
	var raw struct {
		Package      json.RawMessage `json:"package"`
		Environments json.RawMessage `json:"environments"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		c.Skipped = append(c.Skipped, fmt.Sprintf("record %.200s: %v", body, err))
		return c
	}
	if err := json.Unmarshal(raw.Package, &c.Package); err != nil || c.Package == nil {
		c.Package = nil
		c.Skipped = append(c.Skipped, fmt.Sprintf("package %.200s: %v", raw.Package, err))
		return c
	}
	if err := unmarshalIfAny(raw.Environments, &c.Environments); err != nil {
		c.Skipped = append(c.Skipped, fmt.Sprintf("package %q: environments: %v", c.Package.Name, err))
		c.Environments = nil
	}
	return c
}

func unmarshalIfAny(raw []byte, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, v)
}
