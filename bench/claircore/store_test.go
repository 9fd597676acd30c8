package main

import (
	"context"
	"os"
	"testing"

	"github.com/quay/claircore/datastore/postgres"

	"github.com/stevedore-dev/stevedore/bench/internal/benchdb"
	"github.com/stevedore-dev/stevedore/bench/internal/scalefleet"
)

// A small fleet goes into claircore's schema on a real Postgres: every
// manifest has its report and index records, every layer its scan
// artifacts, as libindex would leave them.
func TestStoresFleet(t *testing.T) {
	ctx := context.Background()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = benchdb.DefaultURL
	}
	fl, err := scalefleet.New("../../testdata/fixtures", 20)
	if err != nil {
		t.Fatal(err)
	}
	schemaURL, drop, err := benchdb.FreshSchema(ctx, base, "claircoretest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	pool, err := postgres.Connect(ctx, schemaURL, "stevedore-bench-claircore-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st, err := postgres.InitPostgresIndexerStore(ctx, pool, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newStorer(ctx, st, fl)
	if err != nil {
		t.Fatal(err)
	}
	ms := fl.Manifests(10)
	if err := storeAll(ctx, s, ms, 3); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query string
		min   int
	}{
		{`SELECT count(*) FROM indexreport`, len(ms)},
		{`SELECT count(DISTINCT manifest_id) FROM manifest_index`, len(ms)},
		{`SELECT count(DISTINCT layer_id) FROM package_scanartifact`, 1},
		{`SELECT count(*) FROM scanned_layer`, s.layersUsed() * len(s.vs)},
	} {
		var n int
		if err := pool.QueryRow(ctx, c.query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		if n < c.min {
			t.Errorf("%s: %d, want at least %d", c.query, n, c.min)
		}
	}
	ok, err := st.ManifestScanned(ctx, digest(ms[0].Hash), s.vs)
	if err != nil || !ok {
		t.Errorf("manifest scanned: %v, %v; want true", ok, err)
	}
}
