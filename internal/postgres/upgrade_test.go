package postgres_test

import (
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/postgres"
)

// reportsWholeInTheUpgradeWindow: for the window after migration 00025 was
// applied to a database older than it, a store with an upgrade window
// writes usable reports whole in their rows (which the release before
// 00025 reads), with their answers and records as ever, and its compactor
// leaves them whole; after the window it writes headers and compacts what
// the window wrote. A fresh install has no window, and neither has a store
// without one.
func reportsWholeInTheUpgradeWindow(t *testing.T, c *conf) {
	ctx := c.ctx
	for i, tc := range []struct {
		name string
		// goose is run on goose's version table first: the history of
		// the database.
		goose         string
		window        time.Duration
		wantWhole     bool
		wantCompacted int // rows the compactor stores once, then
	}{
		{"fresh install", ``, time.Hour, false, 0},
		{"upgraded from before 00025, no window", `UPDATE goose_db_version SET tstamp = tstamp - interval '30 days' WHERE version_id NOT IN (25, 26)`, 0, false, 0},
		{"upgraded from before 00025, within the window", ``, time.Hour, true, 0},
		{"a minute short of the window's end", `UPDATE goose_db_version SET tstamp = tstamp - interval '59 minutes' WHERE version_id IN (25, 26)`, time.Hour, true, 0},
		{"after the window", `UPDATE goose_db_version SET tstamp = tstamp - interval '2 minutes' WHERE version_id IN (25, 26)`, time.Hour, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.goose != "" {
				if _, err := c.pool.Exec(ctx, tc.goose); err != nil {
					t.Fatal(err)
				}
			}
			// A new store for each: the window is read once per store.
			st := postgres.New(c.pool, postgres.WithUpgradeWindow(tc.window))
			m := manifest(string(rune('a'+i)), "1")
			want := debianReport(m.Hash, "1", "1.2", "libc6")
			f := c.putManifest(t, "w", m)
			if err := st.FinishManifest(ctx, f, want, nil, nil); err != nil {
				t.Fatal(err)
			}
			whole := c.count(t, `SELECT count(*) FROM index_report WHERE manifest_hash = $1 AND report ? 'packages'`, string(m.Hash)) == 1
			if whole != tc.wantWhole {
				t.Errorf("row holds the whole report: %v, want %v", whole, tc.wantWhole)
			}
			got, err := st.Report(ctx, m.Hash)
			if err != nil {
				t.Fatal(err)
			}
			sameReport(t, "Report", got, want)
			if n := c.count(t, `SELECT count(*) FROM report_body WHERE manifest_hash = $1`, string(m.Hash)); n != 2 {
				t.Errorf("%d answers stored, want 2", n)
			}
			if n := c.count(t, `SELECT cardinality(record_ids) FROM manifest_record WHERE manifest_hash = $1`, string(m.Hash)); n != len(want.Packages) {
				t.Errorf("%d records listed, want %d", n, len(want.Packages))
			}
			last, n, err := st.CompactReports(ctx, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.wantCompacted || (tc.wantWhole && last != "") {
				t.Errorf("compactor: %d stored once (last %q), want %d", n, last, tc.wantCompacted)
			}
			if n := c.count(t, `SELECT count(*) FROM index_report WHERE report ? 'packages'`); tc.wantWhole != (n > 0) {
				t.Errorf("after the compactor, %d rows hold their whole report", n)
			}
		})
	}
}
