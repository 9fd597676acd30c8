package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// TestPutManifestReport: the report and the manifest are written in one
// transaction under the fence; a stale fence writes neither.
func TestPutManifestReport(t *testing.T) {
	pool := pgtest.Pool(t)
	c := &conf{ctx: context.Background(), pool: pool, st: postgres.New(pool)}
	m := manifest("c", "1", "2", "1")
	stale := c.lease(t, "old", m.Hash)
	if _, err := pool.Exec(c.ctx, `UPDATE lease SET expires_at = now() - interval '1 second' WHERE digest = $1`, string(m.Hash)); err != nil {
		t.Fatal(err)
	}
	f := c.lease(t, "new", m.Hash)
	for _, tc := range []struct {
		name    string
		f       postgres.Fence
		wantErr error
		want    int // manifest_layer rows after
	}{
		{name: "stale fence", f: stale, wantErr: leases.ErrLost, want: 0},
		{name: "current fence", f: f, want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := report.NewReport(m.Hash, report.StateCheckManifest)
			r.ScannerState = "s1"
			err := c.st.PutManifestReport(c.ctx, tc.f, m, r)
			if !errors.Is(err, tc.wantErr) && !(tc.wantErr == nil && err == nil) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if n := c.count(t, `SELECT count(*) FROM manifest_layer`); n != tc.want {
				t.Errorf("%d manifest layers, want %d", n, tc.want)
			}
			_, rerr := c.st.Report(c.ctx, m.Hash)
			if (rerr == nil) != (tc.wantErr == nil) {
				t.Errorf("report read: %v, want one only when written", rerr)
			}
		})
	}
}
