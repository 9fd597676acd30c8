package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// StoredLayer is what is stored about one layer: its whiteouts and the merged
// results of a set of scanners.
type StoredLayer struct {
	Digest     report.Digest
	Whiteouts  []string
	OpaqueDirs []string
	// PackageDBs are the files the package scanners were given: the
	// package databases present in the layer, even empty ones.
	PackageDBs []string
	Found      scanner.Result
}

// LoadLayerResults reads the stored results of the given scanners on the given
// layers, in the order of layers, merged per layer.
func (s *Store) LoadLayerResults(ctx context.Context, layers []report.Digest, scannerIDs []int64) ([]*StoredLayer, error) {
	out, _, err := s.LoadLayerResultsWithin(ctx, layers, scannerIDs, -1)
	return out, err
}

// LoadLayerResultsWithin is LoadLayerResults for at most maxPackages packages
// in all (no bound when negative): the packages the scanners found in the
// layers, a layer listed twice counted once, counted in the same round trip: it returns the count and, when it is over
// maxPackages, no layers (the rows that follow the count are read from the
// connection and dropped, none decoded or kept).
func (s *Store) LoadLayerResultsWithin(ctx context.Context, layers []report.Digest, scannerIDs []int64, maxPackages int64) ([]*StoredLayer, int64, error) {
	hashes := make([]string, len(layers))
	out := make([]*StoredLayer, len(layers))
	byHash := map[report.Digest]*StoredLayer{}
	for i, l := range layers {
		hashes[i] = string(l)
		if byHash[l] == nil {
			byHash[l] = &StoredLayer{Digest: l}
		}
		out[i] = byHash[l]
	}
	args := []any{hashes, scannerIDs}
	// One round trip: the queries are sent as one batch; their results
	// are read in order, the count's first.
	b := &pgx.Batch{}
	var n int64
	if maxPackages >= 0 {
		b.Queue(`SELECT count(*)`+packagesOf, hashes, scannerIDs).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&n); err != nil {
				return fmt.Errorf("count packages: %w", err)
			}
			if n > maxPackages {
				clear(byHash) // loadRows drops every row
			}
			return nil
		})
	}
	loadWhiteouts(b, hashes, byHash)
	loadPackageDBs(b, args, byHash)
	loadPackages(b, args, byHash)
	loadDists(b, args, byHash)
	loadRepos(b, args, byHash)
	loadOwnedFiles(b, hashes, scannerIDs, byHash)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, 0, fmt.Errorf("load layer results: %w", err)
	}
	if maxPackages >= 0 && n > maxPackages {
		return nil, n, nil
	}
	return out, n, nil
}

// packagesOf is the FROM and WHERE of the packages the scanners of $2 found
// on the layers of $1 (hashes), each layer once.
const packagesOf = `
  FROM package_scanartifact a
  JOIN layer l ON l.id = a.layer_id
 WHERE l.hash = ANY($1) AND a.scanner_id = ANY($2)`

// loadRows queues query on b, whose first column is a layer's hash, and for each
// row reads the other columns into a new T (at the destinations fields
// gives) and adds it to that layer (nil when the hash is not in byHash)
// with add. what names the data in errors. When byHash is empty by the time
// the results are read (LoadLayerResultsWithin over its bound), the rows are
// dropped undecoded.
func loadRows[T any](b *pgx.Batch, what, query string, args []any, byHash map[report.Digest]*StoredLayer,
	fields func(*T) []any, add func(*StoredLayer, *T)) {
	b.Queue(query, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			if len(byHash) == 0 {
				continue
			}
			var h string
			v := new(T)
			if err := rows.Scan(append([]any{&h}, fields(v)...)...); err != nil {
				return fmt.Errorf("load %s: %w", what, err)
			}
			add(byHash[report.Digest(h)], v)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load %s: %w", what, err)
		}
		return nil
	})
}

func loadWhiteouts(b *pgx.Batch, hashes []string, byHash map[report.Digest]*StoredLayer) {
	type paths struct{ whiteouts, opaque []string }
	loadRows(b, "layer whiteouts",
		`SELECT hash, coalesce(whiteouts, '{}'), coalesce(opaque_dirs, '{}') FROM layer WHERE hash = ANY($1)`, []any{hashes}, byHash,
		func(p *paths) []any { return []any{&p.whiteouts, &p.opaque} },
		func(l *StoredLayer, p *paths) { l.Whiteouts, l.OpaqueDirs = p.whiteouts, p.opaque })
}

func loadPackageDBs(b *pgx.Batch, args []any, byHash map[report.Digest]*StoredLayer) {
	loadRows(b, "package databases", `
SELECT l.hash, f.file
  FROM scanned_layer sl
  JOIN layer l ON l.id = sl.layer_id
  JOIN scanner s ON s.id = sl.scanner_id AND s.kind = 'package'
  CROSS JOIN LATERAL unnest(sl.files) AS f(file)
 WHERE l.hash = ANY($1) AND sl.scanner_id = ANY($2)
 ORDER BY 1, 2`, args, byHash,
		func(f *string) []any { return []any{f} },
		func(l *StoredLayer, f *string) { l.PackageDBs = append(l.PackageDBs, *f) })
}

func loadPackages(b *pgx.Batch, args []any, byHash map[report.Digest]*StoredLayer) {
	type row struct {
		p      report.Package
		sn, sv string
	}
	loadRows(b, "packages", `
SELECT l.hash, p.name, p.version, p.kind, p.arch, p.module, p.normalized_version, p.cpe, p.purl,
       p.source_name, p.source_version, a.package_db, a.repository_hint, a.filepath
  FROM package_scanartifact a
  JOIN layer l ON l.id = a.layer_id
  JOIN package p ON p.id = a.package_id
 WHERE l.hash = ANY($1) AND a.scanner_id = ANY($2)
 ORDER BY l.hash, a.package_db, p.name, p.version, p.arch`, args, byHash,
		func(r *row) []any {
			p := &r.p
			return []any{&p.Name, &p.Version, &p.Kind, &p.Arch, &p.Module, &p.NormalizedVersion, &p.CPE, &p.PURL,
				&r.sn, &r.sv, &p.PackageDB, &p.RepositoryHint, &p.Filepath}
		},
		func(l *StoredLayer, r *row) {
			if r.sn != "" || r.sv != "" {
				r.p.Source = &report.Package{Name: r.sn, Version: r.sv, Kind: report.KindSource}
			}
			l.Found.Packages = append(l.Found.Packages, &r.p)
		})
}

func loadDists(b *pgx.Batch, args []any, byHash map[report.Digest]*StoredLayer) {
	loadRows(b, "distributions", `
SELECT l.hash, d.did, d.name, d.version, d.version_code_name, d.version_id, d.arch, d.cpe, d.pretty_name
  FROM dist_scanartifact a JOIN layer l ON l.id = a.layer_id JOIN dist d ON d.id = a.dist_id
 WHERE l.hash = ANY($1) AND a.scanner_id = ANY($2)
 ORDER BY l.hash, d.did, d.version_id`, args, byHash,
		func(d *report.Distribution) []any {
			return []any{&d.DID, &d.Name, &d.Version, &d.VersionCodeName, &d.VersionID, &d.Arch, &d.CPE, &d.PrettyName}
		},
		func(l *StoredLayer, d *report.Distribution) { l.Found.Distributions = append(l.Found.Distributions, d) })
}

func loadRepos(b *pgx.Batch, args []any, byHash map[report.Digest]*StoredLayer) {
	loadRows(b, "repositories", `
SELECT l.hash, r.name, r.rkey, r.uri, r.cpe
  FROM repo_scanartifact a JOIN layer l ON l.id = a.layer_id JOIN repo r ON r.id = a.repo_id
 WHERE l.hash = ANY($1) AND a.scanner_id = ANY($2)
 ORDER BY l.hash, r.name, r.uri`, args, byHash,
		func(r *report.Repository) []any { return []any{&r.Name, &r.Key, &r.URI, &r.CPE} },
		func(l *StoredLayer, r *report.Repository) { l.Found.Repositories = append(l.Found.Repositories, r) })
}
