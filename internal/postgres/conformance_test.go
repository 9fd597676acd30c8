package postgres_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/api/webhooks"
	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/internal/worker"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// The storage boundary. Its users define what they need of storage as
// interfaces (api.Store, indexer.Store, intake.Store, enrich.Data,
// webhooks.PendingStore, worker.Leases); *postgres.Store and
// *leases.Manager implement them, and TestConformance holds, on a real
// Postgres, every behaviour those interfaces promise. The users' own unit
// tests run their state logic on in-memory fakes of the same interfaces.
var (
	_ api.Store             = (*postgres.Store)(nil)
	_ indexer.Store         = (*postgres.Store)(nil)
	_ intake.Store          = (*postgres.Store)(nil)
	_ enrich.Data           = (*postgres.Store)(nil)
	_ webhooks.PendingStore = (*postgres.Store)(nil)
	_ worker.Leases         = (*leases.Manager)(nil)
)

func digest(c string) report.Digest { return report.Digest("sha256:" + strings.Repeat(c, 64)) }

func manifest(h string, layers ...string) *report.Manifest {
	m := &report.Manifest{Hash: digest(h)}
	for _, l := range layers {
		m.Layers = append(m.Layers, &report.Layer{Hash: digest(l), URI: "http://r/v2/x/blobs/" + string(digest(l))})
	}
	return m
}

// conf is one case's database.
type conf struct {
	ctx  context.Context
	pool *pgxpool.Pool
	st   *postgres.Store
}

// lease takes the lease on d for holder and returns its fence; the lease
// is released when the test ends.
func (c *conf) lease(t *testing.T, holder string, d report.Digest) postgres.Fence {
	t.Helper()
	l, err := leases.New(c.pool, holder, leases.WithTTL(time.Hour)).Acquire(c.ctx, string(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return postgres.Fence{Digest: d, Token: l.Fence}
}

// putManifest takes a lease on m for holder, for the rest of the test,
// stores m under its fence and returns the fence.
func (c *conf) putManifest(t *testing.T, holder string, m *report.Manifest) postgres.Fence {
	t.Helper()
	f := c.lease(t, holder, m.Hash)
	if err := c.st.PutManifest(c.ctx, f, m); err != nil {
		t.Fatal(err)
	}
	return f
}

func (c *conf) scanners(t *testing.T, infos ...scanner.Info) []int64 {
	t.Helper()
	ids, err := c.st.RegisterScanners(c.ctx, infos)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (c *conf) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := c.pool.QueryRow(c.ctx, query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var (
	dpkg      = scanner.Info{Name: "dpkg", Version: "1", Kind: scanner.KindPackage}
	osRelease = scanner.Info{Name: "os-release", Version: "1", Kind: scanner.KindDistribution}
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, c *conf)
	}{
		{"scanners registered once, match version kept current", scannersRegistered},
		{"stale fence is refused", staleFenceRefused},
		{"layer results shared across manifests; deletes leave shared layers", layerResultsSharedAndDeleted},
		{"layer results are stored once", layerResultsStoredOnce},
		{"owned files round trip", ownedFilesRoundTrip},
		{"packages counted as loaded", countPackages},
		{"stored answers follow the report", storedAnswersFollowTheReport},
		{"invalid UTF-8 is a permanent store error", invalidUTF8IsPermanent},
		{"empty results carried over to a new scanner version", carryOverEmpty},
		{"reports replaced atomically", reportsReplacedAtomically},
		{"a usable report is stored once", usableReportStoredOnce},
		{"enqueue waits for the final write and reads it", enqueueWaitsForTheFinalWrite},
		{"reports stored twice are compacted", reportsCompacted},
		{"reports stored whole within the upgrade window", reportsWholeInTheUpgradeWindow},
		{"affected records follow the report", affectedRecordsFollowTheReport},
		{"concurrent writers share new affected records", concurrentWritersShareNewRecords},
		{"records made by the writer are those Postgres makes", recordsMadeAlike},
		{"enqueue decides and records under the report's lock", enqueueClaims},
		{"leases: one holder at a time", leasesOneHolder},
		{"partial reports and their retries", partialRetries},
		{"re-index of reports made by another scanner set", reindexStale},
		{"re-index in batches, each after the one before", reindexAfter},
		{"enrichment data", enrichmentData},
		{"webhook lookups kept for retries", webhookPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := pgtest.Pool(t)
			tc.run(t, &conf{ctx: context.Background(), pool: pool, st: postgres.New(pool)})
		})
	}
}

// scannersRegistered: registering the same scanners again returns their
// ids, in the order asked; a scanner whose match version changed keeps its
// id and gets the new match version; a new one gets a row.
func scannersRegistered(t *testing.T, c *conf) {
	first := c.scanners(t, dpkg, osRelease)
	for _, tc := range []struct {
		name  string
		infos []scanner.Info
		want  func(got []int64) bool
	}{
		{"same, other order", []scanner.Info{osRelease, dpkg}, func(got []int64) bool { return got[0] == first[1] && got[1] == first[0] }},
		{"match version changed", []scanner.Info{dpkg, {Name: "os-release", Version: "1", Kind: scanner.KindDistribution, MatchVersion: "m2"}},
			func(got []int64) bool { return got[0] == first[0] && got[1] == first[1] }},
		{"one new", []scanner.Info{dpkg, {Name: "dpkg", Version: "2", Kind: scanner.KindPackage}},
			func(got []int64) bool { return got[0] == first[0] && !slices.Contains(first, got[1]) }},
	} {
		got := c.scanners(t, tc.infos...)
		if len(got) != len(tc.infos) || !tc.want(got) {
			t.Errorf("%s: ids %v (first registration %v)", tc.name, got, first)
		}
	}
	if n := c.count(t, `SELECT count(*) FROM scanner WHERE name = 'os-release' AND match_version = 'm2'`); n != 1 {
		t.Errorf("%d os-release rows with the new match version, want 1", n)
	}
	if n := c.count(t, `SELECT count(*) FROM scanner`); n != 3 {
		t.Errorf("%d scanner rows, want 3", n)
	}
}

// staleFenceRefused: a worker that lost its lease cannot write anything
// under it, and its report stays as the new holder wrote it.
func staleFenceRefused(t *testing.T, c *conf) {
	ctx, pool, st := c.ctx, c.pool, c.st
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
			return st.FinishManifest(ctx, oldFence, report.NewReport(m.Hash, report.StateIndexFinished), nil, nil)
		},
		"carry over": func() error {
			_, err := st.CarryOverEmpty(ctx, oldFence, []report.Digest{digest("1")}, []int64{1})
			return err
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
	if n := c.count(t, `SELECT count(*) FROM manifest`); n != 0 {
		t.Errorf("%d manifests recorded by the stale writer", n)
	}
}

// layerResultsSharedAndDeleted: results stored by one manifest serve
// another with the same layer; deleting a manifest removes the layers only
// it used and keeps the shared ones with their results.
func layerResultsSharedAndDeleted(t *testing.T, c *conf) {
	ctx, pool, st := c.ctx, c.pool, c.st
	ids := c.scanners(t, dpkg, osRelease)
	again, err := st.RegisterScanners(ctx, []scanner.Info{dpkg})
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
	if n := c.count(t, `SELECT count(*) FROM layer WHERE hash = $1`, string(digest("2"))); n != 0 {
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

// layerResultsStoredOnce: a second write of a (layer, scanner)'s results
// leaves the first; a layer listed twice loads once per position, and the
// packages count once.
func layerResultsStoredOnce(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	ids := c.scanners(t, dpkg)
	m := manifest("a", "1")
	f := c.putManifest(t, "w", m)
	for _, name := range []string{"first", "second"} {
		err := st.PutLayerResults(ctx, f, &postgres.LayerResults{Digest: digest("1"), Scans: []postgres.ScanResult{
			{ScannerID: ids[0], Files: []string{"var/lib/dpkg/status"}, Result: &scanner.Result{Packages: []*report.Package{
				{Name: name, Version: "1", Kind: report.KindBinary, PackageDB: "var/lib/dpkg/status"}}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	layers := []report.Digest{digest("1"), digest("1")}
	got, err := st.LoadLayerResults(ctx, layers, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != got[1] || len(got[0].Found.Packages) != 1 || got[0].Found.Packages[0].Name != "first" ||
		!slices.Equal(got[0].PackageDBs, []string{"var/lib/dpkg/status"}) {
		t.Fatalf("loaded %+v", got[0])
	}
	if n := countWithin(t, c, layers, ids); n != 1 {
		t.Fatalf("count: %d; want 1", n)
	}
}

// carryOverEmpty: a new version of a scanner with the same match version
// gets empty results where the old one was given no file, and only there.
func carryOverEmpty(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	old := c.scanners(t, scanner.Info{Name: "dpkg", Version: "1", Kind: scanner.KindPackage, MatchVersion: "m1"})
	m := manifest("a", "1", "2")
	f := c.putManifest(t, "w", m)
	for _, lr := range []*postgres.LayerResults{
		{Digest: digest("1"), Scans: []postgres.ScanResult{{ScannerID: old[0], Result: &scanner.Result{}}}},
		{Digest: digest("2"), Scans: []postgres.ScanResult{{ScannerID: old[0], Files: []string{"var/lib/dpkg/status"}, Result: &scanner.Result{}}}},
	} {
		if err := st.PutLayerResults(ctx, f, lr); err != nil {
			t.Fatal(err)
		}
	}
	cur := c.scanners(t, scanner.Info{Name: "dpkg", Version: "2", Kind: scanner.KindPackage, MatchVersion: "m1"})
	layers := []report.Digest{digest("1"), digest("2")}
	// LayerNeeds says there is something to carry over, and then that
	// there is not.
	missing, carry, err := st.LayerNeeds(ctx, layers, cur)
	if err != nil || len(missing) != 2 || !carry {
		t.Fatalf("needs before: missing %v, carry %v, %v; want both layers, and something to carry", missing, carry, err)
	}
	n, err := st.CarryOverEmpty(ctx, f, layers, cur)
	if err != nil || n != 1 {
		t.Fatalf("carried over %d, %v; want 1", n, err)
	}
	missing, err = st.MissingScans(ctx, layers, cur)
	if err != nil || len(missing) != 1 || missing[digest("2")] == nil {
		t.Fatalf("missing %v, %v; want only the layer the old version read files in", missing, err)
	}
	after, _, err := st.LayerNeeds(ctx, layers, cur)
	if err != nil || !maps.EqualFunc(after, missing, slices.Equal) {
		t.Fatalf("needs after: missing %v, %v; want %v", after, err, missing)
	}
	// On a layer no scanner read, nothing can be carried over.
	if missing, carry, err := st.LayerNeeds(ctx, []report.Digest{digest("9")}, cur); err != nil || len(missing) != 1 || carry {
		t.Fatalf("needs of a new layer: missing %v, carry %v, %v; want it missing, nothing to carry", missing, carry, err)
	}
}

// reportsReplacedAtomically: each write replaces the whole report; a final
// report and the list of its packages' records (the affected query's) are
// stored together or not at all.
// (The stored answers that go with a terminal report: body_test.go.)
func reportsReplacedAtomically(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	m := manifest("a", "1")
	if _, err := st.Report(ctx, m.Hash); !errors.Is(err, postgres.ErrNotFound) {
		t.Fatalf("report of an unknown manifest: %v, want ErrNotFound", err)
	}
	f := c.putManifest(t, "w", m)
	failed := report.NewReport(m.Hash, report.StateIndexError)
	failed.Err, failed.Attempt = "boom", 2
	if err := st.WriteReport(ctx, f, failed); err != nil {
		t.Fatal(err)
	}
	fin := report.NewReport(m.Hash, report.StateIndexFinished)
	fin.Success, fin.ScannerState, fin.Attempt = true, "s1", 3
	fin.Packages["1"] = &report.Package{ID: "1", Name: "zlib1g", Version: "1.2"}
	if err := st.FinishManifest(ctx, f, fin, nil, []byte(`{"manifest":{}}`)); err != nil {
		t.Fatal(err)
	}
	r, err := st.Report(ctx, m.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != report.StateIndexFinished || r.Err != "" || r.Attempt != 3 || r.ScannerState != "s1" || !r.Success {
		t.Fatalf("stored %+v: not the whole new report", r)
	}
	if n := c.count(t, `SELECT count(*) FROM manifest_record`); n != 1 {
		t.Fatalf("%d lists of records, want 1", n)
	}
	// A final write refused (its fence is stale) leaves the records it
	// would have listed unlisted too.
	m2 := manifest("b", "1")
	f2 := c.putManifest(t, "w2", m2)
	f2.Token--
	fin2 := report.NewReport(m2.Hash, report.StateIndexFinished)
	fin2.Packages["1"] = &report.Package{ID: "1", Name: "zlib1g", Version: "1.3"}
	if err := st.FinishManifest(ctx, f2, fin2, nil, nil); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("stale finish: %v, want ErrLost", err)
	}
	if n := c.count(t, `SELECT count(*) FROM manifest_record`); n != 1 {
		t.Fatalf("%d lists of records after a refused finish, want 1", n)
	}
}

// enqueueClaims: Enqueue publishes only for a report that is not current,
// records the request only when a job was queued, and resets an
// IndexError report it queues again.
func enqueueClaims(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	m := manifest("a", "1")
	never := func(*report.Report) bool { return false }
	var calls int
	publish := func(queued bool, err error) postgres.Publish {
		return func(_ context.Context, _ *report.Report, _ bool) (bool, error) { calls++; return queued, err }
	}
	// A failed publish leaves no row: no report waits for a job that
	// does not exist.
	errNATS := errors.New("nats down")
	if _, _, err := st.Enqueue(ctx, m.Hash, "s1", never, publish(false, errNATS)); !errors.Is(err, errNATS) {
		t.Fatalf("enqueue with a failed publish: %v", err)
	}
	if _, err := st.Report(ctx, m.Hash); !errors.Is(err, postgres.ErrNotFound) {
		t.Fatalf("report after a failed publish: %v, want none", err)
	}
	var fresh bool
	r, queued, err := st.Enqueue(ctx, m.Hash, "s1", never, func(_ context.Context, stored *report.Report, f bool) (bool, error) {
		fresh = f
		return stored.State == report.StateCheckManifest, nil
	})
	if err != nil || !queued || !fresh || r.State != report.StateCheckManifest || r.ScannerState != "s1" {
		t.Fatalf("first enqueue: %+v, queued %v, fresh %v, %v", r, queued, fresh, err)
	}
	// A current report is returned without a publish.
	calls = 0
	if r, queued, err := st.Enqueue(ctx, m.Hash, "s1", func(*report.Report) bool { return true }, publish(true, nil)); err != nil || queued || calls != 0 || r == nil {
		t.Fatalf("enqueue of a current report: queued %v, %d publishes, %v", queued, calls, err)
	}
	// An IndexError report queued again starts over from CheckManifest.
	f := c.lease(t, "w", m.Hash)
	failed := report.NewReport(m.Hash, report.StateIndexError)
	failed.Err = "boom"
	if err := st.WriteReport(ctx, f, failed); err != nil {
		t.Fatal(err)
	}
	if r, queued, err := st.Enqueue(ctx, m.Hash, "s2", never, publish(false, nil)); err != nil || queued || r.State != report.StateIndexError {
		t.Fatalf("enqueue not queued: %+v, %v, %v; want the report left as it is", r, queued, err)
	}
	r, queued, err = st.Enqueue(ctx, m.Hash, "s2", never, publish(true, nil))
	if err != nil || !queued || r.State != report.StateCheckManifest || r.Err != "" || r.ScannerState != "s2" {
		t.Fatalf("enqueue of an IndexError report: %+v, %v, %v", r, queued, err)
	}
}

// leasesOneHolder: one holder at a time; the other is told who and for how
// long; a later holder gets a larger fence.
func leasesOneHolder(t *testing.T, c *conf) {
	ctx := c.ctx
	a, b := leases.New(c.pool, "a", leases.WithTTL(time.Hour)), leases.New(c.pool, "b", leases.WithTTL(time.Hour))
	la, err := a.Take(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	var busy *leases.BusyError
	if _, err := b.Take(ctx, "d"); !errors.As(err, &busy) || busy.Holder != "a" || busy.Remaining <= 0 {
		t.Fatalf("second holder: %v, want busy with a", err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Take(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release(ctx)
	if lb.Token() <= la.Token() || lb.Lost() || lb.Context().Err() != nil {
		t.Fatalf("new holder: fence %d after %d, lost %v", lb.Token(), la.Token(), lb.Lost())
	}
}

// partialRetries: a partial report waits for its data; it is requeued once
// the data is loaded or an operator asks, and not again until then.
func partialRetries(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	m := manifest("a", "1")
	f := c.putManifest(t, "w", m)
	r := report.NewReport(m.Hash, report.StateIndexPartial)
	next := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	r.NextRetry, r.Attempt = &next, 1
	r.Partial = []report.PartialReason{{Scanner: "rhel", Reason: "mapping not loaded"}}
	if err := st.FinishManifest(ctx, f, r, []string{"repository-to-cpe"}, []byte(`{"manifest":{"manifest_hash":"`+string(m.Hash)+`"}}`)); err != nil {
		t.Fatal(err)
	}
	ps, err := st.ListPartial(ctx, 10)
	if err != nil || len(ps) != 1 || !slices.Equal(ps[0].WaitingFor, []string{"repository-to-cpe"}) || len(ps[0].Reasons) != 1 || ps[0].Attempt != 1 {
		t.Fatalf("partial reports: %+v, %v", ps, err)
	}
	requeue := func() []postgres.Requeue {
		t.Helper()
		qs, err := st.PartialsToRequeue(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		return qs
	}
	if qs := requeue(); len(qs) != 0 {
		t.Fatalf("requeued %v before its data was loaded", qs)
	}
	if err := st.PutEnrichment(ctx, &postgres.Dataset{Name: "repository-to-cpe", Source: "file:///m.json", Digest: "sha256:x", Raw: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	qs := requeue()
	if len(qs) != 1 || qs[0].Digest != m.Hash || qs[0].Attempt != 1 || !strings.Contains(string(qs[0].Job), string(m.Hash)) {
		t.Fatalf("requeue after the data was loaded: %+v", qs)
	}
	if err := st.MarkRequeued(ctx, m.Hash); err != nil {
		t.Fatal(err)
	}
	if qs := requeue(); len(qs) != 0 {
		t.Fatalf("requeued %v again with no new data", qs)
	}
	if ok, err := st.RequestRetry(ctx, m.Hash); err != nil || !ok {
		t.Fatalf("request retry: %v %v", ok, err)
	}
	if qs := requeue(); len(qs) != 1 {
		t.Fatalf("requeue after an operator asked: %v", qs)
	}
	if ok, err := st.RequestRetry(ctx, digest("f")); err != nil || ok {
		t.Fatalf("request retry of an unknown report: %v %v", ok, err)
	}
}

// reindexStale: finished reports of another scanner set are found for
// re-index, and not again within requeueAfter of being queued; a batch is
// marked in one call, unknown digests ignored.
func reindexStale(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	for _, s := range []struct{ h, state string }{{"a", "old"}, {"b", "cur"}, {"c", "old"}} {
		m := manifest(s.h, "1")
		f := c.putManifest(t, "w", m)
		r := report.NewReport(m.Hash, report.StateIndexFinished)
		r.ScannerState = s.state
		if err := st.FinishManifest(ctx, f, r, nil, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := st.ReportsToReindex(ctx, "cur", time.Hour, nil, 10)
	if err != nil || len(rs) != 2 || rs[0].Forced || rs[1].Forced {
		t.Fatalf("to re-index: %+v, %v; want the two old-state reports", rs, err)
	}
	if got := []report.Digest{rs[0].Digest, rs[1].Digest}; !slices.Contains(got, digest("a")) || !slices.Contains(got, digest("c")) {
		t.Fatalf("to re-index: %v; want a and c", got)
	}
	if err := st.MarkReindexQueued(ctx, nil); err != nil {
		t.Fatalf("mark nothing: %v", err)
	}
	if err := st.MarkReindexQueued(ctx, []report.Digest{digest("a"), digest("c"), digest("z")}); err != nil {
		t.Fatal(err)
	}
	if rs, err := st.ReportsToReindex(ctx, "cur", time.Hour, nil, 10); err != nil || len(rs) != 0 {
		t.Fatalf("to re-index after it was queued: %+v, %v", rs, err)
	}
}

// reindexAfter: a sweep's batches, each read after the last report of the
// one before, give the same reports in the same order as one batch does,
// most recently requested first, and none after the last; a report an
// operator asks for is found before where the sweep is.
func reindexAfter(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	for _, h := range []string{"a", "b", "c", "d"} {
		m := manifest(h, "1")
		f := c.putManifest(t, "w", m)
		r := report.NewReport(m.Hash, report.StateIndexFinished)
		r.ScannerState = "old"
		if err := st.FinishManifest(ctx, f, r, nil, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := st.ReportsToReindex(ctx, "cur", time.Hour, nil, 10)
	if err != nil || len(all) != 4 {
		t.Fatalf("to re-index: %+v, %v; want 4", all, err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].RequestedAt.After(all[i-1].RequestedAt) {
			t.Fatalf("%v requested after %v comes later", all[i].Digest, all[i-1].Digest)
		}
	}
	var got []report.Digest
	var after *postgres.Reindex
	for range 5 {
		rs, err := st.ReportsToReindex(ctx, "cur", time.Hour, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			break
		}
		got = append(got, rs[0].Digest)
		after = &rs[0]
	}
	want := []report.Digest{all[0].Digest, all[1].Digest, all[2].Digest, all[3].Digest}
	if !slices.Equal(got, want) {
		t.Fatalf("in batches of one: %v; want %v", got, want)
	}
	// One asked for above where the pass is is found all the same.
	if _, err := st.RequestReindex(ctx, []report.Digest{all[0].Digest}, false, false, "cur"); err != nil {
		t.Fatal(err)
	}
	rs, err := st.ReportsToReindex(ctx, "cur", time.Hour, &all[2], 10)
	if err != nil || len(rs) != 2 || rs[0].Digest != all[0].Digest || !rs[0].Forced || rs[1].Digest != all[3].Digest {
		t.Fatalf("after the third, with the first asked for: %+v, %v; want the first, forced, then the fourth", rs, err)
	}
}

// enrichmentData: a data set is replaced whole, confirmed, and its failed
// updates noted; an unknown one is ErrNotFound.
func enrichmentData(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	if _, err := st.Enrichment(ctx, "x", true); !errors.Is(err, postgres.ErrNotFound) {
		t.Fatalf("unknown data set: %v, want ErrNotFound", err)
	}
	d := &postgres.Dataset{Name: "x", Source: "https://example/x.json", ETag: `"e1"`, Digest: "sha256:1", Entries: 2, Raw: []byte(`{"a": 1}`)}
	if err := st.PutEnrichment(ctx, d); err != nil || d.LoadedAt.IsZero() {
		t.Fatalf("put: %v, loaded at %v", err, d.LoadedAt)
	}
	if err := st.EnrichmentError(ctx, "x", "source answered 500"); err != nil {
		t.Fatal(err)
	}
	got, err := st.Enrichment(ctx, "x", true)
	if err != nil || string(got.Raw) != `{"a": 1}` || got.ETag != `"e1"` || got.Entries != 2 || got.LastError != "source answered 500" || !got.LoadedAt.Equal(d.LoadedAt) {
		t.Fatalf("stored %+v, %v", got, err)
	}
	if meta, err := st.Enrichment(ctx, "x", false); err != nil || meta.Raw != nil || meta.Digest != "sha256:1" {
		t.Fatalf("meta %+v, %v", meta, err)
	}
	if err := st.ConfirmEnrichment(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Enrichment(ctx, "x", false); err != nil || got.LastError != "" || !got.LoadedAt.After(d.LoadedAt) {
		t.Fatalf("after confirm %+v, %v", got, err)
	}
	if now, err := st.Now(ctx); err != nil || now.Before(d.LoadedAt) {
		t.Fatalf("now %v, %v", now, err)
	}
}

// webhookPending: failed lookups are kept, claimed one replica at a time,
// retried with backoff, given up, started again by a new event, and
// removed once they succeed.
func webhookPending(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	refs := []string{"a.example/x:1", "b.example:5000/y:1"}
	if err := st.AddWebhookPending(ctx, "quay", refs, []string{"e1", "e2"}, []time.Duration{0, time.Hour}); err != nil {
		t.Fatal(err)
	}
	row, err := st.ClaimWebhookPending(ctx, time.Minute, nil)
	if err != nil || row == nil || row.Reference != "a.example/x:1" || row.Source != "quay" || row.Attempts != 1 {
		t.Fatalf("claim: %+v, %v; want the due row", row, err)
	}
	if again, err := st.ClaimWebhookPending(ctx, time.Minute, nil); err != nil || again != nil {
		t.Fatalf("second claim: %+v, %v; want none (claimed, and the other not due)", again, err)
	}
	if err := st.FailWebhookPending(ctx, row.ID, "still down", 0, true); err != nil {
		t.Fatal(err)
	}
	if again, err := st.ClaimWebhookPending(ctx, time.Minute, nil); err != nil || again != nil {
		t.Fatalf("claim after giving up: %+v, %v; want none", again, err)
	}
	// A new event starts a given-up reference again.
	if err := st.AddWebhookPending(ctx, "quay", refs[:1], []string{"e3"}, []time.Duration{0}); err != nil {
		t.Fatal(err)
	}
	row, err = st.ClaimWebhookPending(ctx, time.Minute, []string{"b.example:5000"})
	if err != nil || row == nil || row.Attempts != 1 {
		t.Fatalf("claim after a new event: %+v, %v", row, err)
	}
	if err := st.DeleteWebhookPending(ctx, row.ID); err != nil {
		t.Fatal(err)
	}
	if n := c.count(t, `SELECT count(*) FROM webhook_pending`); n != 1 {
		t.Fatalf("%d rows left, want 1", n)
	}
}
