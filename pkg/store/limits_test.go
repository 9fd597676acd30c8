package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/pgtest"
	"github.com/stevedore-dev/stevedore/pkg/index"
	"github.com/stevedore-dev/stevedore/pkg/leases"
	"github.com/stevedore-dev/stevedore/pkg/scanners"
	"github.com/stevedore-dev/stevedore/pkg/store"
)

func pkgs(prefix string, n int) []*index.Package {
	var out []*index.Package
	for i := range n {
		out = append(out, &index.Package{Name: fmt.Sprintf("%s%d", prefix, i), Version: "1", Kind: index.KindBinary, PackageDB: "db"})
	}
	return out
}

// TestCountPackages counts what LoadLayerResults would load: per layer
// (once, however often it is listed) and per scanner asked for.
func TestCountPackages(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := store.New(pool)
	ids, err := st.RegisterScanners(ctx, []scanners.Info{
		{Name: "dpkg", Version: "2", Kind: scanners.KindPackage},
		{Name: "npm", Version: "1", Kind: scanners.KindPackage},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := manifest("c", "1", "2")
	l, err := leases.New(pool, "t", leases.WithTTL(time.Hour)).Acquire(ctx, string(m.Hash))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	f := store.Fence{Digest: m.Hash, Token: l.Fence}
	if err := st.PutManifest(ctx, f, m); err != nil {
		t.Fatal(err)
	}
	for _, lr := range []*store.LayerResults{
		{Digest: digest("1"), Scans: []store.ScanResult{
			{ScannerID: ids[0], Result: &scanners.Result{Packages: pkgs("d", 3)}},
			{ScannerID: ids[1], Result: &scanners.Result{Packages: pkgs("n", 5)}},
		}},
		{Digest: digest("2"), Scans: []store.ScanResult{
			{ScannerID: ids[0], Result: &scanners.Result{Packages: pkgs("d", 2)}},
			{ScannerID: ids[1], Result: &scanners.Result{}},
		}},
	} {
		if err := st.PutLayerResults(ctx, f, lr); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		layers   []index.Digest
		scanners []int64
		want     int64
	}{
		{"both layers, both scanners", []index.Digest{digest("1"), digest("2")}, ids, 10},
		{"a layer listed twice", []index.Digest{digest("1"), digest("2"), digest("1")}, ids, 10},
		{"one scanner", []index.Digest{digest("1"), digest("2")}, ids[:1], 5},
		{"one layer", []index.Digest{digest("2")}, ids, 2},
		{"a layer not stored", []index.Digest{digest("9")}, ids, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := st.CountPackages(ctx, tc.layers, tc.scanners)
			if err != nil || n != tc.want {
				t.Fatalf("CountPackages = %d, %v; want %d", n, err, tc.want)
			}
			stored, err := st.LoadLayerResults(ctx, tc.layers, tc.scanners)
			if err != nil {
				t.Fatal(err)
			}
			loaded, seen := 0, map[index.Digest]bool{}
			for _, s := range stored {
				if !seen[s.Digest] {
					seen[s.Digest] = true
					loaded += len(s.Found.Packages)
				}
			}
			if int64(loaded) != n {
				t.Errorf("LoadLayerResults loads %d packages, CountPackages says %d", loaded, n)
			}
		})
	}
}
