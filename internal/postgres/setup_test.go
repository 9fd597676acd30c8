package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/stevedore-dev/stevedore/internal/postgres/migrations"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
)

// migrationsAt opens the test's empty schema, without migrating it, and
// migrates it up to version with goose, for tests of one migration; it
// returns the pool and the provider to go on with.
func migrationsAt(ctx context.Context, t *testing.T, version int64, opts ...goose.ProviderOption) (*pgxpool.Pool, *goose.Provider) {
	t.Helper()
	pool, err := pgxpool.New(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		t.Fatal(err)
	}
	return pool, p
}
