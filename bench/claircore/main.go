// Command claircore stores bench/scale's fleet in claircore's indexer schema
// (issue 13, goal 5: what Clair's database holds for the same content as
// Stevedore's): the same manifests over the same layers (the fleet of
// bench/internal/scalefleet, same -layers and -sizes), each layer read once
// by Stevedore's scanners and each manifest's report coalesced by
// Stevedore's coalescer (so that both stores hold the same packages), then
// written through claircore's own Postgres datastore
// (github.com/quay/claircore/datastore/postgres: its migrations, and the
// calls libindex's controller makes: PersistManifest; for each new layer
// IndexPackages, IndexDistributions, IndexRepositories and SetLayerScanned
// for every scanner of libindex's default ecosystems, plus nodejs for the
// npm packages; IndexManifest and SetIndexFinished with the report in
// claircore's form, its ids those of claircore's tables), on a fresh schema
// of DATABASE_URL.
//
// At each size it prints Postgres bytes (every table of the schema, with
// indexes and TOAST, after a VACUUM) per manifest and per unique layer
// used, and per table; bench/scale prints Stevedore's for the same fleet.
//
//	cd bench/claircore && go run . -sizes 1000,10000 -layers 2000
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/quay/claircore/datastore/postgres"

	"github.com/stevedore-dev/stevedore/bench/internal/benchdb"
	"github.com/stevedore-dev/stevedore/bench/internal/scalefleet"
	"github.com/stevedore-dev/stevedore/report"
)

func main() {
	var (
		sizes    = flag.String("sizes", "1000,10000", "fleet sizes (manifests), growing")
		layers   = flag.Int("layers", 2000, "unique layers (a tenth of them base layers), as bench/scale's")
		parallel = flag.Int("parallel", 6, "manifests stored at once")
		fixtures = flag.String("fixtures", "../../testdata/fixtures", "the fixtures directory")
		dbURL    = benchdb.URLFlag("a fresh schema is used and dropped")
	)
	flag.Parse()
	ns, err := scalefleet.ParseSizes(*sizes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "claircore:", err)
		os.Exit(2)
	}
	benchdb.ExitOn("claircore", run(context.Background(), ns, *layers, *parallel, *fixtures, *dbURL))
}

func run(ctx context.Context, sizes []int, nLayers, parallel int, fixtures, dbURL string) error {
	start := time.Now()
	fl, err := scalefleet.New(fixtures, nLayers)
	if err != nil {
		return err
	}
	fmt.Printf("%d unique layers (%d base, %d application), built in %s\n", len(fl.Blobs), len(fl.Bases), len(fl.Apps), time.Since(start).Round(time.Millisecond))
	schemaURL, drop, err := benchdb.FreshSchema(ctx, dbURL, "claircorebench")
	if err != nil {
		return err
	}
	defer drop()
	// synchronous_commit off: a commit does not wait for its WAL flush (the
	// same rows and bytes, sooner; the store rate is not what is measured).
	pool, err := postgres.Connect(ctx, withParam(schemaURL, "synchronous_commit", "off"), "stevedore-bench-claircore")
	if err != nil {
		return err
	}
	defer pool.Close()
	st, err := postgres.InitPostgresIndexerStore(ctx, pool, true)
	if err != nil {
		return fmt.Errorf("claircore migrations: %w", err)
	}
	s, err := newStorer(ctx, st, fl)
	if err != nil {
		return err
	}
	var fleet []*report.Manifest
	for _, n := range sizes {
		ms := fl.Manifests(n - len(fleet))
		t := time.Now()
		if err := storeAll(ctx, s, ms, parallel); err != nil {
			return err
		}
		fleet = append(fleet, ms...)
		fmt.Printf("\n%d manifests (%d new at %.0f/s), %d unique layers used\n", len(fleet), len(ms), float64(len(ms))/time.Since(t).Seconds(), s.layersUsed())
		if err := printSizes(ctx, pool, len(fleet), s.layersUsed()); err != nil {
			return err
		}
	}
	return nil
}

// withParam adds a run-time parameter to a Postgres URL or keyword string.
func withParam(conn, key, value string) string {
	u, err := url.Parse(conn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return conn + " " + key + "=" + value
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// storeAll stores ms, parallel at a time.
func storeAll(ctx context.Context, s *storer, ms []*report.Manifest, parallel int) error {
	return scalefleet.Each(ms, parallel, func(m *report.Manifest) error { return s.manifest(ctx, m) })
}

// printSizes prints the bytes of every table of the schema (indexes and
// TOAST included), after a VACUUM (dead rows do not count), in all, per
// manifest and per unique layer, and per table.
func printSizes(ctx context.Context, pool *pgxpool.Pool, manifests, layers int) error {
	if _, err := pool.Exec(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	rows, err := pool.Query(ctx, `
SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE s.nspname = current_schema() AND c.relkind = 'r'
 ORDER BY 2 DESC`)
	if err != nil {
		return fmt.Errorf("table sizes: %w", err)
	}
	defer rows.Close()
	var total int64
	var parts []string
	for rows.Next() {
		var name string
		var size, tuples int64
		if err := rows.Scan(&name, &size, &tuples); err != nil {
			return err
		}
		total += size
		if len(parts) < 8 {
			parts = append(parts, fmt.Sprintf("%s %.1f MB (%d rows)", name, float64(size)/1e6, tuples))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Printf("  Postgres (claircore's schema): %.1f MB; %.1f KB per manifest, %.1f KB per unique layer\n", float64(total)/1e6, float64(total)/1e3/float64(manifests), float64(total)/1e3/float64(layers))
	fmt.Printf("  largest tables: %s\n", strings.Join(parts, ", "))
	return nil
}
