package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
)

// TestSchemaCurrent: a fresh schema is not current, a migrated one is, and
// one missing a migration (or whose latest row for it says not applied) is
// not, and Migrate then applies it again.
func TestSchemaCurrent(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if postgres.SchemaCurrent(ctx, pool) {
		t.Fatal("a fresh schema is current")
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if !postgres.SchemaCurrent(ctx, pool) {
		t.Fatal("a migrated schema is not current")
	}
	versions, err := postgres.MigrationVersions()
	if err != nil || len(versions) == 0 {
		t.Fatalf("migration versions %v: %v", versions, err)
	}
	last := versions[len(versions)-1]
	if _, err := pool.Exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, false)`, last); err != nil {
		t.Fatal(err)
	}
	if postgres.SchemaCurrent(ctx, pool) {
		t.Fatalf("current while migration %d's latest row says not applied", last)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM goose_db_version WHERE version_id = $1`, last); err != nil {
		t.Fatal(err)
	}
	if postgres.SchemaCurrent(ctx, pool) {
		t.Fatalf("current without migration %d", last)
	}
}
