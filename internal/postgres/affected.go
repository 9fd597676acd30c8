package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stevedore-dev/stevedore/report"
)

// ErrTooManyRows is returned by AffectedCandidates when more candidate rows
// match than the caller's bound.
var ErrTooManyRows = errors.New("too many candidate packages")

// AffectedCandidate is a usable report holding packages whose name or
// source name was asked for: those packages, with what the report says
// about where they were found.
type AffectedCandidate struct {
	// Manifest is the report's manifest digest.
	Manifest report.Digest
	// Packages are the report's packages of the names asked for.
	Packages []AffectedPackage
	// Distributions and Repositories are the report's, by id.
	Distributions map[string]*report.Distribution
	Repositories  map[string]*report.Repository
	// Skipped says what of the stored report could not be read (a
	// package, its environments, the distributions or repositories not
	// in the shape Stevedore writes): it is left out, not fatal.
	Skipped []string
}

// AffectedPackage is a package of a report, with its environments.
type AffectedPackage struct {
	// Package is the package as the report holds it (PURL included).
	Package *report.Package `json:"package"`
	// Environments are the package's environments in the report.
	Environments []*report.Environment `json:"environments"`
}

// affectedQuery selects the reports in a terminal usable state
// (IndexFinished, IndexPartial) that hold packages named (by name or source
// name, in lower case) in $1, with those packages, their environments and
// the report's distributions and repositories. The innermost conditions are
// the partial GIN index of migration 00007, written as it is so that the
// planner uses it. The innermost query copies each report once ("|| '{}'")
// so that the others do not decompress it again for each use, and the
// environments are taken out once per report, not once per package (OFFSET
// 0 keeps the planner from folding that query into the outer one, which
// would take them out again for each package).
const affectedQuery = `
SELECT r.manifest_hash, p.pkg, r.envs->p.id, r.dists, r.repos
  FROM (SELECT manifest_hash,
               CASE WHEN jsonb_typeof(rep->'packages') = 'object' THEN rep->'packages' ELSE '{}'::jsonb END AS pkgs,
               CASE WHEN jsonb_typeof(rep->'environments') = 'object' THEN rep->'environments' ELSE '{}'::jsonb END AS envs,
               rep->'distributions' AS dists, rep->'repository' AS repos
          FROM (SELECT manifest_hash, report || '{}'::jsonb AS rep
                  FROM index_report
                 WHERE state IN ('IndexFinished', 'IndexPartial')
                   AND stevedore_report_package_names(report) && $1::text[]
                 LIMIT $2) AS c
        OFFSET 0) AS r
 CROSS JOIN LATERAL jsonb_each(r.pkgs) AS p(id, pkg)
 WHERE jsonb_typeof(p.pkg) = 'object'
   AND (lower(p.pkg->>'name') IN (SELECT unnest($1::text[]))
        OR lower(p.pkg->'source'->>'name') IN (SELECT unnest($1::text[])))`

// AffectedCandidates calls fn with each report, finished or partial, that
// holds packages whose name or source name, in lower case, is one of names
// (which must be in lower case). It reads at most maxPackages packages:
// more is ErrTooManyRows (fn has then seen some of them). Rows are
// streamed, one report's packages in memory at a time.
func (s *Store) AffectedCandidates(ctx context.Context, names []string, maxPackages int, fn func(*AffectedCandidate) error) error {
	if len(names) == 0 {
		return nil
	}
	if maxPackages < 1 {
		return fmt.Errorf("affected candidates: package bound %d: want at least 1", maxPackages)
	}
	rows, err := s.pool.Query(ctx, affectedQuery, names, maxPackages+1)
	if err != nil {
		return fmt.Errorf("affected candidates: %w", err)
	}
	defer rows.Close()
	n := 0
	var cur *AffectedCandidate
	var last string
	var lastDists, lastRepos []byte
	flush := func() error {
		if cur == nil {
			return nil
		}
		c := cur
		cur = nil
		return fn(c)
	}
	for rows.Next() {
		var hash string
		var pkg, envs, dists, repos []byte
		if err := rows.Scan(&hash, &pkg, &envs, &dists, &repos); err != nil {
			return fmt.Errorf("affected candidates: %w", err)
		}
		if n++; n > maxPackages {
			return fmt.Errorf("affected candidates: more than %d packages of %d names: %w", maxPackages, len(names), ErrTooManyRows)
		}
		// The rows of a report come together (one report's packages are
		// expanded at a time).
		if hash != last || cur == nil {
			if err := flush(); err != nil {
				return err
			}
			cur = &AffectedCandidate{Manifest: report.Digest(hash)}
			last = hash
			lastDists, lastRepos = nil, nil
		}
		if !bytes.Equal(dists, lastDists) {
			if err := unmarshalIfAny(dists, &cur.Distributions); err != nil {
				cur.Distributions = nil
				cur.Skipped = append(cur.Skipped, "distributions: "+err.Error())
			}
			lastDists = dists
		}
		if !bytes.Equal(repos, lastRepos) {
			if err := unmarshalIfAny(repos, &cur.Repositories); err != nil {
				cur.Repositories = nil
				cur.Skipped = append(cur.Skipped, "repository: "+err.Error())
			}
			lastRepos = repos
		}
		ap := AffectedPackage{}
		if err := json.Unmarshal(pkg, &ap.Package); err != nil || ap.Package == nil {
			cur.Skipped = append(cur.Skipped, fmt.Sprintf("package %.200s: %v", pkg, err))
			continue
		}
		if err := unmarshalIfAny(envs, &ap.Environments); err != nil {
			cur.Skipped = append(cur.Skipped, fmt.Sprintf("package %q: environments: %v", ap.Package.Name, err))
			ap.Environments = nil
		}
		cur.Packages = append(cur.Packages, ap)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("affected candidates: %w", err)
	}
	return flush()
}

func unmarshalIfAny(raw []byte, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, v)
}
