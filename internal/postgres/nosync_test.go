package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
)

// TestFencedSynchronousCommit checks which fenced transactions wait for the
// WAL flush: fencedNoSync's do not (noSync), fenced's keep the server's
// setting; both check the fence first.
func TestFencedSynchronousCommit(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var server string
	if err := pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&server); err != nil {
		t.Fatal(err)
	}
	l, err := leases.New(pool, "t", leases.WithTTL(time.Hour)).Acquire(ctx, "sha256:aa")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	st := postgres.New(pool)
	held, stale := postgres.Fence{Digest: "sha256:aa", Token: l.Fence}, postgres.Fence{Digest: "sha256:aa", Token: l.Fence - 1}
	for _, tc := range []struct {
		name string
		run  func(*postgres.Store, context.Context, postgres.Fence, func(pgx.Tx) error) error
		want string
	}{
		{"fenced", postgres.Fenced, server},
		{"fencedNoSync", postgres.FencedNoSync, "off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			if err := tc.run(st, ctx, held, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&got)
			}); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("synchronous_commit in the transaction = %q, want %q", got, tc.want)
			}
			if err := tc.run(st, ctx, stale, func(pgx.Tx) error { return nil }); !errors.Is(err, leases.ErrLost) {
				t.Errorf("stale fence: %v, want leases.ErrLost", err)
			}
			if err := pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&got); err != nil || got != server {
				t.Errorf("after the transaction: %q, %v; want %q", got, err, server)
			}
		})
	}
}
