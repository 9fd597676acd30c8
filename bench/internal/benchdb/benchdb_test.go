package benchdb

import (
	"context"
	"os"
	"testing"
)

// TestOpen makes a schema, uses it and drops it, on the test Postgres.
func TestOpen(t *testing.T) {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = DefaultURL
	}
	ctx := context.Background()
	pool, st, closeDB, err := Open(ctx, base, "benchdbtest")
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		t.Fatal("nil store")
	}
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	closeDB()
	check, _, closeCheck, err := Open(ctx, base, "benchdbcheck")
	if err != nil {
		t.Fatal(err)
	}
	defer closeCheck()
	var n int
	if err := check.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 || len(schema) < len("benchdbtest_") || schema[:len("benchdbtest_")] != "benchdbtest_" {
		t.Errorf("schema %q: %d left after close, want a benchdbtest_ schema dropped", schema, n)
	}
}
