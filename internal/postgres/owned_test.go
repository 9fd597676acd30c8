package postgres_test

import (
	"slices"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// ownedFilesRoundTrip (a case of TestConformance) stores the owned files of two scanners on two
// layers, reads them back per layer (the union of the scanners asked for,
// sorted), checks that a second write of the same results changes nothing,
// and that deleting the manifest removes them with its layers.
func ownedFilesRoundTrip(t *testing.T, c *conf) {
	ctx, pool, st := c.ctx, c.pool, c.st
	ids := c.scanners(t,
		scanner.Info{Name: "dpkg", Version: "2", Kind: scanner.KindPackage},
		scanner.Info{Name: "rpm", Version: "1", Kind: scanner.KindPackage})
	m := manifest("b", "1", "2")
	f := c.putManifest(t, "t", m)
	put := func() {
		t.Helper()
		for _, lr := range []*postgres.LayerResults{
			{Digest: digest("1"), Scans: []postgres.ScanResult{
				{ScannerID: ids[0], Files: []string{"var/lib/dpkg/status"}, Result: &scanner.Result{
					OwnedFiles: []string{"usr/bin/ls", "usr/lib/python3/dist-packages/six.py"}}},
				{ScannerID: ids[1], Result: &scanner.Result{OwnedFiles: []string{"usr/bin/ls", "usr/bin/rpm"}}},
			}},
			{Digest: digest("2"), Scans: []postgres.ScanResult{
				{ScannerID: ids[0], Result: &scanner.Result{}},
				{ScannerID: ids[1], Result: &scanner.Result{}},
			}},
		} {
			if err := st.PutLayerResults(ctx, f, lr); err != nil {
				t.Fatal(err)
			}
		}
	}
	put()
	put()
	layers := []report.Digest{digest("1"), digest("2")}
	got, err := st.LoadLayerResults(ctx, layers, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"usr/bin/ls", "usr/bin/rpm", "usr/lib/python3/dist-packages/six.py"}
	if !slices.Equal(got[0].Found.OwnedFiles, want) || len(got[1].Found.OwnedFiles) != 0 {
		t.Errorf("owned files %q and %q, want %q and none", got[0].Found.OwnedFiles, got[1].Found.OwnedFiles, want)
	}
	// Only the scanners asked for.
	got, err = st.LoadLayerResults(ctx, layers, ids[1:])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"usr/bin/ls", "usr/bin/rpm"}; !slices.Equal(got[0].Found.OwnedFiles, want) {
		t.Errorf("rpm's owned files %q, want %q", got[0].Found.OwnedFiles, want)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM owned_files`).Scan(&rows); err != nil || rows != 2 {
		t.Fatalf("%d owned_files rows (%v), want 2", rows, err)
	}
	if _, err := st.DeleteManifest(ctx, m.Hash); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM owned_files`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%d owned_files rows left after the delete (%v)", rows, err)
	}
}
