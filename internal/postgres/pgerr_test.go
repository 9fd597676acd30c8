package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/report"
)

func TestPermanentDatabaseErrors(t *testing.T) {
	for _, tc := range []struct {
		code string
		want bool
	}{
		{"22021", true},  // character_not_in_repertoire (invalid UTF-8)
		{"22P02", true},  // invalid_text_representation
		{"22001", true},  // string_data_right_truncation
		{"21000", true},  // cardinality_violation
		{"42703", true},  // undefined_column
		{"54000", true},  // program_limit_exceeded
		{"23502", true},  // not_null_violation
		{"23505", false}, // unique_violation: a concurrent insert
		{"40001", false}, // serialization_failure
		{"40P01", false}, // deadlock_detected
		{"57P01", false}, // admin_shutdown (a restart)
		{"08006", false}, // connection_failure
		{"53300", false}, // too_many_connections
		{"", false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			err := fmt.Errorf("store: %w", &pgconn.PgError{Code: tc.code})
			if got := postgres.Permanent(err); got != tc.want {
				t.Fatalf("Permanent(%s) = %v, want %v", tc.code, got, tc.want)
			}
		})
	}
	if postgres.Permanent(context.DeadlineExceeded) {
		t.Fatal("a deadline is not permanent")
	}
}

// A real refusal from Postgres: layer results naming a file that is not
// UTF-8 are a data error, not worth a retry.
func invalidUTF8IsPermanent(t *testing.T, c *conf) {
	ctx, pool, st := c.ctx, c.pool, c.st
	m := manifest("a", "1")
	l, err := leases.New(pool, "w").Acquire(ctx, string(m.Hash))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	f := postgres.Fence{Digest: m.Hash, Token: l.Fence}
	err = st.PutLayerResults(ctx, f, &postgres.LayerResults{Digest: digest("1"), Whiteouts: []string{"app/\xff.jar"}})
	if err == nil || !postgres.Permanent(err) {
		t.Fatalf("PutLayerResults with a non-UTF-8 name: %v, want a permanent error", err)
	}
	if err := st.WriteReport(ctx, f, report.NewReport(m.Hash, report.StateScanLayers)); err != nil {
		t.Fatalf("a good write after the refused one: %v", err)
	}
}
