// Package benchdb gives the bench commands a Postgres schema of their own.
package benchdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/postgres"
)

// FreshSchema creates a schema named prefix_<random> in the database at base
// and returns a connection string selecting it, and a function that drops it.
// A base that is not a postgres:// URL (a key=value string) gets the
// search_path appended.
func FreshSchema(ctx context.Context, base, prefix string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("postgres at %s (set DATABASE_URL): %w", base, err)
	}
	defer conn.Close(ctx)
	var rnd [4]byte
	rand.Read(rnd[:])
	schema := prefix + "_" + hex.EncodeToString(rnd[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	drop := func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return base + " search_path=" + schema, drop, nil
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// DefaultURL is the database the bench commands use when DATABASE_URL is
// not set.
const DefaultURL = "postgres://127.0.0.1:5432/test?sslmode=disable"

// URLFlag registers the -database-url flag on the default flag set, its
// default DATABASE_URL or DefaultURL; use says how the command uses it.
func URLFlag(use string) *string {
	def := os.Getenv("DATABASE_URL")
	if def == "" {
		def = DefaultURL
	}
	return flag.String("database-url", def, "Postgres; "+use+" (env DATABASE_URL)")
}

// ExitOn prints err prefixed by the command's name to standard error and
// exits with status 1; a nil err does nothing.
func ExitOn(name string, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Open makes a fresh schema as FreshSchema does, connects a pool to it and
// returns the pool, a store on it, and a function that closes the pool and
// drops the schema.
func Open(ctx context.Context, base, prefix string) (*pgxpool.Pool, *postgres.Store, func(), error) {
	schemaURL, drop, err := FreshSchema(ctx, base, prefix)
	if err != nil {
		return nil, nil, nil, err
	}
	pool, err := postgres.Connect(ctx, schemaURL)
	if err != nil {
		drop()
		return nil, nil, nil, fmt.Errorf("connect to schema %s: %w", prefix, err)
	}
	return pool, postgres.New(pool), func() { pool.Close(); drop() }, nil
}
