package postgres_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"

	"github.com/stevedore-dev/stevedore/internal/postgres"
)

// Reports stored before migrations 00007 and 00023 are found after them (the
// index and the records are built over them), whatever the shape of what is
// stored; only finished and partial reports count; and the migrations go
// down and up again.
func TestAffectedCandidatesAcrossTheMigration(t *testing.T) {
	ctx := context.Background()
	pool, p := migrationsAt(ctx, t, 6, goose.WithAllowOutofOrder(true))
	insertReportsOfEveryShape(ctx, t, pool)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	st := postgres.New(pool)
	find := func(names ...string) ([]string, []*postgres.AffectedCandidate, error) {
		return findCandidates(ctx, st, names...)
	}
	for _, c := range []struct {
		names []string
		want  []string
	}{
		// 07's package is unreadable: its report is seen, the package
		// skipped.
		{[]string{"zlib1g"}, []string{"sha256:01", "sha256:02", "sha256:07"}},
		{[]string{"zlib"}, []string{"sha256:01", "sha256:02"}}, // by source name, case-insensitively
		{[]string{"absent"}, nil},
		{nil, nil},
	} {
		got, _, err := find(c.names...)
		if err != nil {
			t.Fatalf("%v: %v", c.names, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: reports %v, want %v", c.names, got, c.want)
		}
	}
	_, cs, err := find("zlib1g")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if slices.Contains(c.Manifests, "sha256:07") && (c.Package != nil || len(c.Skipped) != 1) {
			t.Errorf("unreadable report: package %v, skipped %q: want none, and the package skipped", c.Package, c.Skipped)
		}
		if !slices.Contains(c.Manifests, "sha256:01") {
			continue
		}
		if c.Package == nil || c.Package.Version != "1:1.2.13.dfsg-1" || len(c.Environments) != 1 ||
			c.Environments[0].Distribution == nil || c.Environments[0].Distribution.DID != "debian" ||
			len(c.Environments[0].Repositories) != 1 || c.Environments[0].Repositories[0].Name != "main" {
			t.Errorf("candidate %+v: package, environment, distribution or repository missing", c)
		}
	}
	if err := st.AffectedCandidates(ctx, []string{"zlib1g"}, 2, func(*postgres.AffectedCandidate) error { return nil }); !errors.Is(err, postgres.ErrTooManyRows) {
		t.Errorf("3 packages with a bound of 2: %v, want ErrTooManyRows", err)
	}
	if _, err := p.DownTo(ctx, 6); err != nil {
		t.Fatalf("down: %v", err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if got, _, err := find("zlib1g"); err != nil || len(got) != 3 {
		t.Errorf("after down and up: %v %v", got, err)
	}
}

// insertReportsOfEveryShape stores, as the schema before migration 00007
// allows, reports in every state and of every shape, readable or not.
func insertReportsOfEveryShape(ctx context.Context, t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	const zlib = `{"id": "1", "name": "zlib1g", "version": "1:1.2.13.dfsg-1", "kind": "binary", "source": {"name": "ZLib", "version": "1:1.2.13.dfsg-1"}}`
	for _, r := range []struct{ hash, state, report string }{
		{"sha256:01", "IndexFinished", `{"packages": {"1": ` + zlib + `}, "environments": {"1": [{"package_db": "var/lib/dpkg/status", "distribution_id": "d", "repository_ids": ["r"]}]},
		  "distributions": {"d": {"id": "d", "did": "debian", "version_id": "12"}}, "repository": {"r": {"id": "r", "name": "main"}, "other": {"id": "other"}}}`},
		{"sha256:02", "IndexPartial", `{"packages": {"1": ` + zlib + `}}`},
		{"sha256:03", "IndexError", `{"packages": {"1": ` + zlib + `}}`},
		{"sha256:04", "ScanLayers", `{"packages": {"1": ` + zlib + `}}`},
		{"sha256:05", "IndexFinished", `{"packages": [1, 2]}`},
		{"sha256:06", "IndexFinished", `{"packages": {"1": "zlib1g", "2": null, "3": {"name": 5}}, "environments": []}`},
		{"sha256:07", "IndexFinished", `{"packages": {"1": {"name": "zlib1g", "source": "x"}}, "environments": {"1": "x"}}`},
		{"sha256:08", "IndexFinished", `"not an object"`},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO index_report (manifest_hash, state, scanner_state, report) VALUES ($1, $2, 's', $3::jsonb)`, r.hash, r.state, r.report); err != nil {
			t.Fatalf("%s: %v", r.hash, err)
		}
	}
}

// findCandidates returns the sorted manifests of the stored reports with a
// package named one of names, and the candidates.
func findCandidates(ctx context.Context, st *postgres.Store, names ...string) ([]string, []*postgres.AffectedCandidate, error) {
	var hashes []string
	var cs []*postgres.AffectedCandidate
	err := st.AffectedCandidates(ctx, names, 100, func(c *postgres.AffectedCandidate) error {
		for _, m := range c.Manifests {
			hashes = append(hashes, string(m))
		}
		cs = append(cs, c)
		return nil
	})
	slices.Sort(hashes)
	return slices.Compact(hashes), cs, err
}
