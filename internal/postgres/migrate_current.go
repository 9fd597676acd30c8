package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

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
func schemaCurrent(ctx context.Context, pool *pgxpool.Pool) bool {
	want, err := migrationVersions()
	if err != nil {
		return false
	}
	var missing int
	// A version is applied when its latest row says so.
	err = pool.QueryRow(ctx, `
SELECT count(*) FROM unnest($1::bigint[]) AS w(version)
 WHERE NOT EXISTS (
   SELECT 1 FROM (SELECT DISTINCT ON (version_id) version_id, is_applied
                    FROM goose_db_version ORDER BY version_id, id DESC) v
    WHERE v.version_id = w.version AND v.is_applied)`, want).Scan(&missing)
	return err == nil && missing == 0
}
