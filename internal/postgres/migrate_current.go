package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/postgres/migrations"
)

// migrationVersions are the versions of the embedded migration files.
func migrationVersions() ([]int64, error) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return nil, err
	}
	versions := make([]int64, 0, len(names))
	for _, name := range names {
		digits, _, _ := strings.Cut(name, "_")
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("migration file %s: no version number: %w", name, err)
		}
		versions = append(versions, v)
	}
	return versions, nil
}

// schemaCurrent reports whether every embedded migration is applied to the
// current schema, by one read of goose's version table, so that a process
// starting on a current schema (every start but the first after an upgrade)
// takes no lock and runs no migration machinery. Any doubt (no table yet,
// an error) answers false: Migrate then does the whole work, as before.
//
// The table is read whole (a row per migration run, a few dozen) and judged
// here: a statement that Postgres plans in no time and sends in one round
// trip (the simple protocol, no prepared statement), for a new backend's
// first query is on every process's start-up path. A join over the
// embedded versions cost ~1.5 ms more per start on a new backend.
func schemaCurrent(ctx context.Context, pool *pgxpool.Pool) bool {
	want, err := migrationVersions()
	if err != nil {
		return false
	}
	rows, err := pool.Query(ctx, `SELECT version_id, is_applied FROM goose_db_version ORDER BY id`, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return false
	}
	// A version is applied when its latest row says so.
	applied := map[int64]bool{}
	var v int64
	var ok bool
	if _, err := pgx.ForEachRow(rows, []any{&v, &ok}, func() error {
		applied[v] = ok
		return nil
	}); err != nil {
		return false
	}
	for _, v := range want {
		if !applied[v] {
			return false
		}
	}
	return true
}
