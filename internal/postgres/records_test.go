package postgres_test

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/report"
)

// debianReport is a finished report of manifest d holding zlib1g (under
// the report-local id pkgID) and, when extra is not empty, a package of
// that name, on Debian 12.
func debianReport(d report.Digest, pkgID, zlibVersion, extra string) *report.Report {
	r := report.NewReport(d, report.StateIndexFinished)
	r.Success, r.ScannerState = true, "s1"
	r.Distributions["1"] = &report.Distribution{ID: "1", DID: "debian", VersionID: "12"}
	add := func(id, name, version string, src *report.Package) {
		r.Packages[id] = &report.Package{ID: id, Name: name, Version: version, Kind: report.KindBinary, Source: src}
		r.Environments[id] = []*report.Environment{{PackageDB: "var/lib/dpkg/status", IntroducedIn: d, DistributionID: "1"}}
	}
	add(pkgID, "zlib1g", zlibVersion, &report.Package{ID: pkgID + "s", Name: "ZLib", Version: zlibVersion, Kind: report.KindSource})
	if extra != "" {
		add("x"+pkgID, extra, "1", nil)
	}
	return r
}

// affectedRecordsFollowTheReport: a usable report's packages are stored
// once fleet-wide as records (the same package in two reports, under other
// ids and layers, is one record), listed by the report in the transaction
// that writes it: a report rewritten, failed or deleted no longer lists
// them, a refused write changes nothing, and a deleted report leaves the
// records other reports list.
func affectedRecordsFollowTheReport(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	a, b := manifest("a", "1"), manifest("b", "2")
	fa, fb := c.putManifest(t, "wa", a), c.putManifest(t, "wb", b)
	finish := func(f postgres.Fence, r *report.Report) {
		t.Helper()
		if err := st.FinishManifest(ctx, f, r, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// candidates returns, per record of zlib's source name, its version
	// and its manifests.
	candidates := func() map[string][]report.Digest {
		t.Helper()
		out := map[string][]report.Digest{}
		err := st.AffectedCandidates(ctx, []string{"zlib"}, 100, func(c *postgres.AffectedCandidate) error {
			if c.Package == nil || len(c.Environments) != 1 || c.Environments[0].Distribution.DID != "debian" {
				t.Errorf("candidate %+v: package or its distribution missing", c)
				return nil
			}
			m := slices.Clone(c.Manifests)
			slices.Sort(m)
			out[c.Package.Name+" "+c.Package.Version] = m
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	check := func(what string, records int, want map[string][]report.Digest) {
		t.Helper()
		if n := c.count(t, `SELECT count(*) FROM affected_record`); n != records {
			t.Errorf("%s: %d records, want %d", what, n, records)
		}
		if got := candidates(); !maps.EqualFunc(got, want, slices.Equal[[]report.Digest]) {
			t.Errorf("%s: candidates %v, want %v", what, got, want)
		}
	}
	finish(fa, debianReport(a.Hash, "1", "1.2", ""))
	finish(fb, debianReport(b.Hash, "7", "1.2", "libc6"))
	check("two reports sharing zlib1g", 2, map[string][]report.Digest{"zlib1g 1.2": {a.Hash, b.Hash}})

	// A refused final write (stale fence) lists nothing new.
	stale := fa
	stale.Token--
	if err := st.FinishManifest(ctx, stale, debianReport(a.Hash, "1", "9.9", ""), nil, nil); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("stale finish: %v, want ErrLost", err)
	}
	check("after a refused write", 2, map[string][]report.Digest{"zlib1g 1.2": {a.Hash, b.Hash}})

	// A report being indexed again, or failed, is not usable.
	if err := st.WriteReport(ctx, fa, report.NewReport(a.Hash, report.StateScanLayers)); err != nil {
		t.Fatal(err)
	}
	check("a re-indexed", 2, map[string][]report.Digest{"zlib1g 1.2": {b.Hash}})
	failed := report.NewReport(a.Hash, report.StateIndexError)
	failed.Err = "boom"
	if err := st.WriteReport(ctx, fa, failed); err != nil {
		t.Fatal(err)
	}
	check("a failed", 2, map[string][]report.Digest{"zlib1g 1.2": {b.Hash}})

	// Finished again with a new version: a record of its own; the
	// partial state is usable too.
	up := debianReport(a.Hash, "3", "1.3", "")
	up.State = report.StateIndexPartial
	if err := st.FinishManifest(ctx, fa, up, []string{"x"}, []byte(`{"manifest":{}}`)); err != nil {
		t.Fatal(err)
	}
	check("a partial with 1.3", 3, map[string][]report.Digest{"zlib1g 1.2": {b.Hash}, "zlib1g 1.3": {a.Hash}})

	// Deleting b leaves its records (a sweep's business) but lists none.
	if _, err := st.DeleteManifest(ctx, b.Hash); err != nil {
		t.Fatal(err)
	}
	check("b deleted", 3, map[string][]report.Digest{"zlib1g 1.3": {a.Hash}})
	if n := c.count(t, `SELECT count(*) FROM manifest_record`); n != 1 {
		t.Errorf("%d report lists after the delete, want 1", n)
	}
	// A report of b stored again finds its records.
	if err := st.PutManifest(ctx, fb, b); err != nil {
		t.Fatal(err)
	}
	finish(fb, debianReport(b.Hash, "2", "1.2", "libc6"))
	check("b stored again", 3, map[string][]report.Digest{"zlib1g 1.2": {b.Hash}, "zlib1g 1.3": {a.Hash}})
}
