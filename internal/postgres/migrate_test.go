package postgres_test

import (
	"context"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/postgres"
)

// A database migrated by the first release (migration 1 only) upgrades to
// the current schema: migrations already applied are never edited, so what
// later code needs comes in later migrations.
func TestUpgradeFromTheFirstSchema(t *testing.T) {
	ctx := context.Background()
	pool, _ := migrationsAt(ctx, t, 1)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	for _, col := range []struct{ table, column string }{
		{"scanned_layer", "files"},
		{"index_report", "waiting_for"},
		{"index_report", "reindex_requested"},
		{"scanner", "match_version"},
	} {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
 WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`, col.table, col.column).Scan(&n)
		if err != nil || n != 1 {
			t.Errorf("%s.%s missing after the upgrade (%v)", col.table, col.column, err)
		}
	}
	// And again: nothing left to do.
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}
