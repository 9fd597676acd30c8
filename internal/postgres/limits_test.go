package postgres_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

func pkgs(prefix string, n int) []*report.Package {
	var out []*report.Package
	for i := range n {
		out = append(out, &report.Package{Name: fmt.Sprintf("%s%d", prefix, i), Version: "1", Kind: report.KindBinary, PackageDB: "db"})
	}
	return out
}

// countPackages (a case of TestConformance) counts what LoadLayerResults would load: per layer
// (once, however often it is listed) and per scanner asked for.
func countPackages(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	ids := c.scanners(t,
		scanner.Info{Name: "dpkg", Version: "2", Kind: scanner.KindPackage},
		scanner.Info{Name: "npm", Version: "1", Kind: scanner.KindPackage})
	m := manifest("c", "1", "2")
	f := c.putManifest(t, "t", m)
	for _, lr := range []*postgres.LayerResults{
		{Digest: digest("1"), Scans: []postgres.ScanResult{
			{ScannerID: ids[0], Result: &scanner.Result{Packages: pkgs("d", 3)}},
			{ScannerID: ids[1], Result: &scanner.Result{Packages: pkgs("n", 5)}},
		}},
		{Digest: digest("2"), Scans: []postgres.ScanResult{
			{ScannerID: ids[0], Result: &scanner.Result{Packages: pkgs("d", 2)}},
			{ScannerID: ids[1], Result: &scanner.Result{}},
		}},
	} {
		if err := st.PutLayerResults(ctx, f, lr); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		layers   []report.Digest
		scanners []int64
		want     int64
	}{
		{"both layers, both scanners", []report.Digest{digest("1"), digest("2")}, ids, 10},
		{"a layer listed twice", []report.Digest{digest("1"), digest("2"), digest("1")}, ids, 10},
		{"one scanner", []report.Digest{digest("1"), digest("2")}, ids[:1], 5},
		{"one layer", []report.Digest{digest("2")}, ids, 2},
		{"a layer not stored", []report.Digest{digest("9")}, ids, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := countWithin(t, c, tc.layers, tc.scanners)
			if n != tc.want {
				t.Fatalf("LoadLayerResultsWithin counted %d, want %d", n, tc.want)
			}
			stored, err := st.LoadLayerResults(ctx, tc.layers, tc.scanners)
			if err != nil {
				t.Fatal(err)
			}
			loaded, seen := 0, map[report.Digest]bool{}
			for _, s := range stored {
				if !seen[s.Digest] {
					seen[s.Digest] = true
					loaded += len(s.Found.Packages)
				}
			}
			if int64(loaded) != n {
				t.Errorf("LoadLayerResults loads %d packages, LoadLayerResultsWithin counts %d", loaded, n)
			}
			// Within the limit, the same count and layers; over it, the
			// count and none.
			within, wn, err := st.LoadLayerResultsWithin(ctx, tc.layers, tc.scanners, tc.want)
			if err != nil || wn != tc.want || len(within) != len(stored) {
				t.Errorf("LoadLayerResultsWithin(limit %d) = %d layers, %d, %v; want %d layers and the count", tc.want, len(within), wn, err, len(stored))
			}
			if tc.want == 0 {
				return // a negative limit is no limit
			}
			over, on, err := st.LoadLayerResultsWithin(ctx, tc.layers, tc.scanners, tc.want-1)
			if err != nil || on != tc.want || over != nil {
				t.Errorf("LoadLayerResultsWithin(limit %d) = %d layers, %d, %v; want none and the count %d", tc.want-1, len(over), on, err, tc.want)
			}
		})
	}
}

// countWithin is the package count LoadLayerResultsWithin returns for the
// layers and scanners, with no bound reached.
func countWithin(t *testing.T, c *conf, layers []report.Digest, scannerIDs []int64) int64 {
	t.Helper()
	_, n, err := c.st.LoadLayerResultsWithin(c.ctx, layers, scannerIDs, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
