package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/postgres/migrations"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// putManifest takes a lease on m for the rest of the test, stores m under
// its fence and returns the fence.
func putManifest(ctx context.Context, t *testing.T, pool *pgxpool.Pool, st *postgres.Store, m *report.Manifest) postgres.Fence {
	t.Helper()
	l, err := leases.New(pool, "t", leases.WithTTL(time.Hour)).Acquire(ctx, string(m.Hash))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	f := postgres.Fence{Digest: m.Hash, Token: l.Fence}
	if err := st.PutManifest(ctx, f, m); err != nil {
		t.Fatal(err)
	}
	return f
}

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
