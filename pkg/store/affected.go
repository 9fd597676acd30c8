package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stevedore-dev/stevedore/pkg/index"
)

// ErrTooManyRows is returned by AffectedCandidates when more candidate rows
// match than the caller's bound.
var ErrTooManyRows = errors.New("too many candidate packages")

// AffectedCandidate is one package of a usable report whose name or source
// name was asked for, with what the report says about where it was found.
type AffectedCandidate struct {
	// Manifest is the report's manifest digest.
	Manifest index.Digest
	// Package is the package as the report holds it (PURL included).
	Package *index.Package
	// Environments are the package's environments in the report.
	Environments []*index.Environment
	// Distributions and Repositories are the report's entries that the
	// environments refer to, by id.
	Distributions map[string]*index.Distribution
	Repositories  map[string]*index.Repository
}

// affectedQuery selects, from the reports in a terminal usable state
// (IndexFinished, IndexPartial), the packages named (by name or source name,
// in lower case) in $1, with their environments and the distributions and repositories
// those refer to. The first two conditions are the partial GIN index of
// migration 00007, written as it is so that the planner uses it.
const affectedQuery = `
SELECT r.manifest_hash, p.pkg, r.report->'environments'->p.id,
       (SELECT jsonb_object_agg(d.key, d.value)
          FROM jsonb_each(CASE WHEN jsonb_typeof(r.report->'distributions') = 'object' THEN r.report->'distributions' ELSE '{}'::jsonb END) AS d
         WHERE d.key IN (SELECT e->>'distribution_id' FROM jsonb_array_elements(
                   CASE WHEN jsonb_typeof(r.report->'environments'->p.id) = 'array' THEN r.report->'environments'->p.id ELSE '[]'::jsonb END) AS e)),
       (SELECT jsonb_object_agg(x.key, x.value)
          FROM jsonb_each(CASE WHEN jsonb_typeof(r.report->'repository') = 'object' THEN r.report->'repository' ELSE '{}'::jsonb END) AS x
         WHERE x.key IN (SELECT jsonb_array_elements_text(e->'repository_ids') FROM jsonb_array_elements(
                   CASE WHEN jsonb_typeof(r.report->'environments'->p.id) = 'array' THEN r.report->'environments'->p.id ELSE '[]'::jsonb END) AS e
                 WHERE jsonb_typeof(e->'repository_ids') = 'array'))
  FROM index_report r
 CROSS JOIN LATERAL jsonb_each(r.report->'packages') AS p(id, pkg)
 WHERE r.state IN ('IndexFinished', 'IndexPartial')
   AND stevedore_report_package_names(r.report) && $1::text[]
   AND jsonb_typeof(p.pkg) = 'object'
   AND (lower(p.pkg->>'name') = ANY($1::text[]) OR lower(p.pkg->'source'->>'name') = ANY($1::text[]))
 LIMIT $2`

// AffectedCandidates calls fn with each package, in a finished or partial
// report, whose name or source name, in lower case, is one of names (which
// must be in lower case). It reads at most
// maxRows packages: more is ErrTooManyRows (fn has then seen maxRows of
// them). Rows are streamed, so memory does not grow with their number.
func (s *Store) AffectedCandidates(ctx context.Context, names []string, maxRows int, fn func(*AffectedCandidate) error) error {
	if len(names) == 0 {
		return nil
	}
	if maxRows < 1 {
		return fmt.Errorf("affected candidates: row bound %d: want at least 1", maxRows)
	}
	rows, err := s.pool.Query(ctx, affectedQuery, names, maxRows+1)
	if err != nil {
		return fmt.Errorf("affected candidates: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		if n > maxRows {
			return fmt.Errorf("affected candidates: more than %d packages of %d names: %w", maxRows, len(names), ErrTooManyRows)
		}
		var hash string
		var pkg, envs, dists, repos []byte
		if err := rows.Scan(&hash, &pkg, &envs, &dists, &repos); err != nil {
			return fmt.Errorf("affected candidates: %w", err)
		}
		c := &AffectedCandidate{Manifest: index.Digest(hash)}
		if err := json.Unmarshal(pkg, &c.Package); err != nil {
			return fmt.Errorf("affected candidates: stored report of %s: package: %w", hash, err)
		}
		for _, f := range []struct {
			raw []byte
			v   any
			key string
		}{{envs, &c.Environments, "environments"}, {dists, &c.Distributions, "distributions"}, {repos, &c.Repositories, "repositories"}} {
			if len(f.raw) == 0 {
				continue
			}
			if err := json.Unmarshal(f.raw, f.v); err != nil {
				return fmt.Errorf("affected candidates: stored report of %s: package %q: %s: %w", hash, c.Package.Name, f.key, err)
			}
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("affected candidates: %w", err)
	}
	return nil
}
