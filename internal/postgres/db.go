// Package postgres keeps Stevedore's state in Postgres: manifests, layers, the
// per-(layer, scanner) scan results, index reports, enrichment data and the
// webhook lookups kept for retries. Every write of results by a worker is
// fenced: it checks, in the same transaction, that the worker still holds the
// manifest's lease (see internal/postgres/leases).
//
// All of Stevedore's SQL is here (with leases and reportwait below it). Its
// users do not depend on *Store: each defines the small interface it needs
// (indexer.Store, intake.Store, enrich.Data, webhooks.PendingStore;
// worker.Leases for leases.Manager), and *Store implements them. One
// conformance suite, TestConformance, holds every behaviour those interfaces
// promise on a real database; the users test their state logic on in-memory
// fakes.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/stevedore-dev/stevedore/internal/postgres/migrations"
)

// ErrNotFound is returned when a manifest has no report (or an enrichment
// data set was never loaded).
var ErrNotFound = errors.New("not found")

// Connect opens a connection pool to the database at url (a libpq URL or
// keyword string; a search_path parameter selects a schema), with
// OpenTelemetry tracing of queries, and applies the migrations.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, errors.New("connect to postgres: no database URL (set DATABASE_URL or --database-url)")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: parse database URL: %w", err)
	}
	cfg.ConnConfig.Tracer = otelpgx.NewTracer()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Migrate applies the pending migrations. It is safe when several replicas
// start at once: the migrations run under a Postgres advisory lock, keyed by
// the current schema so that separate schemas in one database do not wait for
// each other.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if schemaCurrent(ctx, pool) {
		return nil
	}
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fmt.Errorf("migrate: read current schema: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("stevedore-migrations:" + schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()>>1)),
		lock.WithLockTimeout(1, 600),
	)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	// Migrations are written in parallel by separate changes and must not
	// depend on each other's order: a database that has a later one may
	// still be given an earlier one.
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithSessionLocker(locker), goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate schema %q: %w", schema, err)
	}
	return nil
}
