package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

func digest(c string) report.Digest { return report.Digest("sha256:" + strings.Repeat(c, 64)) }

func manifest(h string, layers ...string) *report.Manifest {
	m := &report.Manifest{Hash: digest(h)}
	for _, l := range layers {
		m.Layers = append(m.Layers, &report.Layer{Hash: digest(l), URI: "http://r/v2/x/blobs/" + string(digest(l))})
	}
	return m
}

func TestStaleFenceWriteIsRefused(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	m := manifest("a", "1")
	old, err := leases.New(pool, "old", leases.WithTTL(time.Hour)).Acquire(ctx, string(m.Hash))
	if err != nil {
		t.Fatal(err)
	}
	oldFence := postgres.Fence{Digest: m.Hash, Token: old.Fence}
	if err := st.WriteReport(ctx, oldFence, report.NewReport(m.Hash, report.StateScanLayers)); err != nil {
		t.Fatal(err)
	}
	// The old holder stalls past its lease; a new holder takes over.
	if _, err := pool.Exec(ctx, `UPDATE lease SET expires_at = now() - interval '1s'`); err != nil {
		t.Fatal(err)
	}
	cur, err := leases.New(pool, "new", leases.WithTTL(time.Hour)).Acquire(ctx, string(m.Hash))
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Release(ctx)
	curFence := postgres.Fence{Digest: m.Hash, Token: cur.Fence}
	if err := st.WriteReport(ctx, curFence, report.NewReport(m.Hash, report.StateCoalesce)); err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func() error{
		"report": func() error {
			return st.WriteReport(ctx, oldFence, report.NewReport(m.Hash, report.StateIndexFinished))
		},
		"manifest":      func() error { return st.PutManifest(ctx, oldFence, m) },
		"layer results": func() error { return st.PutLayerResults(ctx, oldFence, &postgres.LayerResults{Digest: digest("1")}) },
		"finish": func() error {
			return st.FinishManifest(ctx, oldFence, report.NewReport(m.Hash, report.StateIndexFinished), nil, nil, nil)
		},
	} {
		if err := write(); !errors.Is(err, leases.ErrLost) {
			t.Errorf("stale %s write: got %v, want ErrLost", name, err)
		}
	}
	r, err := st.Report(ctx, m.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != report.StateCoalesce {
		t.Fatalf("report state %s: the stale writer got through", r.State)
	}
}

func TestLayerResultsRoundTripAndDelete(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	ids, err := st.RegisterScanners(ctx, []scanner.Info{{Name: "dpkg", Version: "1", Kind: scanner.KindPackage}, {Name: "os-release", Version: "1", Kind: scanner.KindDistribution}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.RegisterScanners(ctx, []scanner.Info{{Name: "dpkg", Version: "1", Kind: scanner.KindPackage}})
	if err != nil || again[0] != ids[0] {
		t.Fatalf("re-register: %v %v", again, err)
	}
	a, b := manifest("a", "1", "2"), manifest("b", "1", "3")
	for _, m := range []*report.Manifest{a, b} {
		l, err := leases.New(pool, "w").Acquire(ctx, string(m.Hash))
		if err != nil {
			t.Fatal(err)
		}
		f := postgres.Fence{Digest: m.Hash, Token: l.Fence}
		if err := st.PutManifest(ctx, f, m); err != nil {
			t.Fatal(err)
		}
		for _, layer := range m.Layers {
			pkg := &report.Package{Name: "p" + layer.Hash.Hex()[:1], Version: "1", Kind: report.KindBinary, Arch: "amd64",
				PackageDB: "var/lib/dpkg/status", Source: &report.Package{Name: "src", Version: "1", Kind: report.KindSource}}
			err := st.PutLayerResults(ctx, f, &postgres.LayerResults{
				Digest: layer.Hash, Whiteouts: []string{"etc/x"},
				Scans: []postgres.ScanResult{
					{ScannerID: ids[0], Result: &scanner.Result{Packages: []*report.Package{pkg}}},
					{ScannerID: ids[1], Result: &scanner.Result{Distributions: []*report.Distribution{{DID: "debian", VersionID: "12"}}}},
				}})
			if err != nil {
				t.Fatal(err)
			}
		}
		l.Release(ctx)
	}
	missing, err := st.MissingScans(ctx, []report.Digest{digest("1"), digest("9")}, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 1 || len(missing[digest("9")]) != 2 {
		t.Fatalf("missing = %v, want only the unknown layer, lacking both scanners", missing)
	}
	got, err := st.LoadLayerResults(ctx, []report.Digest{digest("1"), digest("2")}, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[0].Found.Packages) != 1 || got[0].Found.Packages[0].Name != "p1" ||
		got[0].Found.Packages[0].Source.Name != "src" || len(got[1].Found.Distributions) != 1 || got[0].Whiteouts[0] != "etc/x" {
		t.Fatalf("loaded %+v", got)
	}
	// Deleting a removes layer 2 (only a used it) but keeps layer 1 (b uses
	// it) with its results.
	if found, err := st.DeleteManifest(ctx, a.Hash); err != nil || !found {
		t.Fatalf("delete: %v %v", found, err)
	}
	var n int
	pool.QueryRow(ctx, `SELECT count(*) FROM layer WHERE hash = $1`, string(digest("2"))).Scan(&n)
	if n != 0 {
		t.Fatal("layer used only by the deleted manifest is still there")
	}
	missing, err = st.MissingScans(ctx, []report.Digest{digest("1")}, ids)
	if err != nil || len(missing) != 0 {
		t.Fatalf("shared layer lost its results: %v %v", missing, err)
	}
	if found, err := st.DeleteManifest(ctx, a.Hash); err != nil || found {
		t.Fatalf("second delete: %v %v", found, err)
	}
}
