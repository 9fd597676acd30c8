package indexer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// The indexer's states without servers: an in-memory indexer.Store and
// Fetcher, and a scanner that reports one package per file it is given.
// The storage behaviour these fakes stand for is held against Postgres by
// internal/postgres's conformance suite.

// memStore is an in-memory indexer.Store that records the calls made.
type memStore struct {
	mu      sync.Mutex
	calls   []string
	reports map[report.Digest]*report.Report
	results map[report.Digest]map[int64]*scanner.Result
	// fence is the token that holds the lease; writes under another one
	// are refused.
	fence int64
	// failOn makes the named call fail.
	failOn  string
	waiting []string
}

var errInjected = errors.New("injected store failure")

func newMemStore() *memStore {
	return &memStore{fence: 1, reports: map[report.Digest]*report.Report{}, results: map[report.Digest]map[int64]*scanner.Result{}}
}

func (s *memStore) call(name string, f *postgres.Fence) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, name)
	if strings.HasPrefix(name, s.failOn) && s.failOn != "" {
		return errInjected
	}
	if f != nil && f.Token != s.fence {
		return fmt.Errorf("%s with fence %d: %w", name, f.Token, leases.ErrLost)
	}
	return nil
}

func (s *memStore) RegisterScanners(_ context.Context, infos []scanner.Info) ([]int64, error) {
	ids := make([]int64, len(infos))
	for i := range infos {
		ids[i] = int64(i + 1)
	}
	return ids, nil
}

func (s *memStore) Report(_ context.Context, d report.Digest) (*report.Report, error) {
	if err := s.call("Report", nil); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reports[d]
	if !ok {
		return nil, fmt.Errorf("report for %s: %w", d, postgres.ErrNotFound)
	}
	return r, nil
}

func (s *memStore) WriteReport(_ context.Context, f postgres.Fence, r *report.Report) error {
	if err := s.call("WriteReport "+string(r.State), &f); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports[r.Hash] = r
	return nil
}

// PutManifestReport records the report's write and the manifest's as two
// calls, in that order (one transaction in Postgres).
func (s *memStore) PutManifestReport(ctx context.Context, f postgres.Fence, _ *report.Manifest, r *report.Report) error {
	if r != nil {
		if err := s.WriteReport(ctx, f, r); err != nil {
			return err
		}
	}
	return s.call("PutManifest", &f)
}

func (s *memStore) MissingScans(_ context.Context, layers []report.Digest, ids []int64) (map[report.Digest][]int, error) {
	if err := s.call("MissingScans", nil); err != nil {
		return nil, err
	}
	return s.missing(layers, ids), nil
}

// LayerNeeds is recorded as MissingScans; it says there may be something
// to carry over whenever a scan is missing, so that CarryOverEmpty is
// called as it would be then.
func (s *memStore) LayerNeeds(ctx context.Context, layers []report.Digest, ids []int64) (map[report.Digest][]int, bool, error) {
	if err := s.call("MissingScans", nil); err != nil {
		return nil, false, err
	}
	m := s.missing(layers, ids)
	return m, len(m) > 0, nil
}

func (s *memStore) missing(layers []report.Digest, ids []int64) map[report.Digest][]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[report.Digest][]int{}
	for _, l := range layers {
		for i, id := range ids {
			if _, ok := s.results[l][id]; !ok && !slices.Contains(out[l], i) {
				out[l] = append(out[l], i)
			}
		}
	}
	return out
}

func (s *memStore) CarryOverEmpty(_ context.Context, f postgres.Fence, _ []report.Digest, _ []int64) (int64, error) {
	return 0, s.call("CarryOverEmpty", &f)
}

func (s *memStore) PutLayerResults(_ context.Context, f postgres.Fence, lr *postgres.LayerResults) error {
	if err := s.call("PutLayerResults "+string(lr.Digest), &f); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.results[lr.Digest] == nil {
		s.results[lr.Digest] = map[int64]*scanner.Result{}
	}
	for _, sr := range lr.Scans {
		if _, ok := s.results[lr.Digest][sr.ScannerID]; !ok {
			s.results[lr.Digest][sr.ScannerID] = sr.Result
		}
	}
	return nil
}

// LoadLayerResultsWithin records the count and the load as two calls, in
// that order (one round trip in Postgres); over the limit, only the count.
func (s *memStore) LoadLayerResultsWithin(_ context.Context, layers []report.Digest, ids []int64, maxPackages int64) ([]*postgres.StoredLayer, int64, error) {
	if err := s.call("CountPackages", nil); err != nil {
		return nil, 0, err
	}
	stored := s.load(layers, ids)
	var n int64
	for _, sl := range stored {
		n += int64(len(sl.Found.Packages))
	}
	if n > maxPackages {
		return nil, n, nil
	}
	if err := s.call("LoadLayerResults", nil); err != nil {
		return nil, 0, err
	}
	return stored, n, nil
}

func (s *memStore) load(layers []report.Digest, ids []int64) []*postgres.StoredLayer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*postgres.StoredLayer, len(layers))
	for i, l := range layers {
		out[i] = &postgres.StoredLayer{Digest: l}
		for _, id := range ids {
			if r := s.results[l][id]; r != nil {
				out[i].Found.Packages = append(out[i].Found.Packages, r.Packages...)
			}
		}
	}
	return out
}

func (s *memStore) FinishManifest(_ context.Context, f postgres.Fence, r *report.Report, waitingFor []string, _ []byte) error {
	if err := s.call("FinishManifest "+string(r.State), &f); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports[r.Hash], s.waiting = r, waitingFor
	return nil
}

// memFetcher serves layers from memory and counts the fetches.
type memFetcher struct {
	mu      sync.Mutex
	blobs   map[report.Digest][]byte
	fetched []report.Digest
}

func (f *memFetcher) Open(_ context.Context, l *report.Layer) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetched = append(f.fetched, l.Hash)
	b, ok := f.blobs[l.Hash]
	if !ok {
		return nil, fmt.Errorf("layer %s: not in the fake registry", l.Hash)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// tarLayer returns an uncompressed layer holding the named files, and its
// digest.
func tarLayer(t *testing.T, names ...string) (report.Digest, []byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("x"))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return report.Digest("sha256:" + hex.EncodeToString(sum[:])), buf.Bytes()
}

// pkgScanner finds a package named after each file ending in .pkg.
type pkgScanner struct{}

func (pkgScanner) Info() scanner.Info {
	return scanner.Info{Name: "fake-pkg", Version: "1", Kind: scanner.KindPackage}
}
func (pkgScanner) Match(p string) bool { return strings.HasSuffix(p, ".pkg") }
func (pkgScanner) Scan(_ context.Context, files []scanner.File) (*scanner.Result, error) {
	r := &scanner.Result{}
	for _, f := range files {
		r.Packages = append(r.Packages, &report.Package{Name: strings.TrimSuffix(f.Path(), ".pkg"), Version: "1", Kind: report.KindBinary, PackageDB: f.Path()})
	}
	return r, nil
}

// gapEnricher waits for a data set that is never there.
type gapEnricher struct{}

func (gapEnricher) Info() scanner.Info {
	return scanner.Info{Name: "fake-enricher", Version: "1", Kind: "enricher"}
}
func (gapEnricher) Enrich(context.Context, *report.Report) ([]enrich.Gap, error) {
	return []enrich.Gap{{Data: "fake-data", Reason: "fake data not loaded"}}, nil
}

type fixture struct {
	st *memStore
	fx *memFetcher
	ix *indexer.Indexer
	m  *report.Manifest
}

func newFixture(t *testing.T, cfg indexer.Config) *fixture {
	t.Helper()
	d1, b1 := tarLayer(t, "a.pkg", "b.pkg")
	d2, b2 := tarLayer(t, "c.pkg", "d.pkg", "readme")
	fx := &fixture{st: newMemStore(), fx: &memFetcher{blobs: map[report.Digest][]byte{d1: b1, d2: b2}}}
	fx.m = &report.Manifest{Hash: report.Digest("sha256:" + strings.Repeat("a", 64)),
		Layers: []*report.Layer{{Hash: d1}, {Hash: d2}, {Hash: d1}}}
	cfg.Store, cfg.Fetcher, cfg.Scanners = fx.st, fx.fx, []scanner.Scanner{pkgScanner{}}
	cfg.Logger = slog.New(slog.DiscardHandler)
	ix, err := indexer.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	fx.ix = ix
	return fx
}

func (fx *fixture) fence() postgres.Fence { return postgres.Fence{Digest: fx.m.Hash, Token: 1} }

// writes lists the fenced writes made, in order.
func (fx *fixture) writes() []string {
	var out []string
	for _, c := range fx.st.calls {
		for _, p := range []string{"WriteReport", "PutManifest", "PutLayerResults", "FinishManifest", "CarryOverEmpty"} {
			if strings.HasPrefix(c, p) {
				out = append(out, c)
			}
		}
	}
	return out
}

func TestIndexStates(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t, indexer.Config{})
	r, err := fx.ix.Index(ctx, fx.fence(), fx.m, indexer.Run{Attempt: 1, Job: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != report.StateIndexFinished || !r.Success || r.ScannerState != fx.ix.State() || r.Attempt != 1 {
		t.Fatalf("report: state %s, success %v, scanner state %q, attempt %d", r.State, r.Success, r.ScannerState, r.Attempt)
	}
	var names []string
	for _, p := range r.Packages {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"a", "b", "c", "d"}) {
		t.Errorf("packages %v, want a b c d", names)
	}
	// The repeated layer is read once; the states are stored in order,
	// each before its work.
	if len(fx.fx.fetched) != 2 {
		t.Errorf("fetched %v, want each distinct layer once", fx.fx.fetched)
	}
	w := fx.writes()
	want := []string{"WriteReport CheckManifest", "PutManifest", "WriteReport FetchLayers", "CarryOverEmpty", "WriteReport ScanLayers"}
	if !slices.Equal(w[:5], want) {
		t.Errorf("first writes %v, want %v", w[:5], want)
	}
	want = []string{"WriteReport Coalesce", "WriteReport IndexManifest", "FinishManifest IndexFinished"}
	if !slices.Equal(w[len(w)-3:], want) {
		t.Errorf("last writes %v, want %v", w[len(w)-3:], want)
	}
	if n := len(w) - 8; n != 2 {
		t.Errorf("%d layer result writes, want 2: %v", n, w)
	}

	// CheckManifest: a current report ends the next run with no write.
	fx.st.calls, fx.fx.fetched = nil, nil
	again, err := fx.ix.Index(ctx, fx.fence(), fx.m, indexer.Run{Attempt: 1})
	if err != nil || again != r {
		t.Fatalf("second run: %v %v, want the stored report", again, err)
	}
	if w := fx.writes(); len(w) != 0 || len(fx.fx.fetched) != 0 {
		t.Errorf("a current report was worked on: writes %v, fetched %v", w, fx.fx.fetched)
	}
	// Force runs it again, but the stored layers are not fetched.
	if _, err := fx.ix.Index(ctx, fx.fence(), fx.m, indexer.Run{Attempt: 1, Force: true}); err != nil {
		t.Fatal(err)
	}
	if len(fx.fx.fetched) != 0 || slices.Contains(fx.st.calls, "CarryOverEmpty") {
		t.Errorf("forced run fetched %v (calls %v), want no layer: their results are stored", fx.fx.fetched, fx.st.calls)
	}
}

func TestIndexPartial(t *testing.T) {
	fx := newFixture(t, indexer.Config{Enrichers: []enrich.Enricher{gapEnricher{}}})
	r, err := fx.ix.Index(context.Background(), fx.fence(), fx.m, indexer.Run{Attempt: 3, Job: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != report.StateIndexPartial || r.NextRetry == nil || r.Attempt != 3 {
		t.Fatalf("report: state %s, next retry %v, attempt %d; want a partial with its retry", r.State, r.NextRetry, r.Attempt)
	}
	if len(r.Partial) != 1 || r.Partial[0].Scanner != "fake-enricher" || r.Partial[0].Reason != "fake data not loaded" {
		t.Errorf("partial reasons %+v", r.Partial)
	}
	if !slices.Equal(fx.st.waiting, []string{"fake-data"}) {
		t.Errorf("stored as waiting for %v, want fake-data", fx.st.waiting)
	}
	// A partial report is not current: the next run does the work again.
	fx.st.calls = nil
	if _, err := fx.ix.Index(context.Background(), fx.fence(), fx.m, indexer.Run{Attempt: 4}); err != nil {
		t.Fatal(err)
	}
	if w := fx.writes(); len(w) == 0 || w[0] != "WriteReport CheckManifest" {
		t.Errorf("retry of a partial report: writes %v", w)
	}
}

// TestIndexStops: a failure in any state ends the run with the error, the
// report left in the state reached and nothing written after it.
func TestIndexStops(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       indexer.Config
		failOn    string
		lost      bool
		wantErr   error
		lastWrite string
	}{
		{name: "lost lease", lost: true, wantErr: leases.ErrLost, lastWrite: "WriteReport CheckManifest"},
		{name: "manifest", failOn: "PutManifest", wantErr: errInjected, lastWrite: "PutManifest"},
		{name: "missing scans", failOn: "MissingScans", wantErr: errInjected, lastWrite: "WriteReport FetchLayers"},
		{name: "layer results", failOn: "PutLayerResults", wantErr: errInjected, lastWrite: "PutLayerResults"},
		{name: "count", failOn: "CountPackages", wantErr: errInjected, lastWrite: "WriteReport Coalesce"},
		{name: "report limit", cfg: indexer.Config{MaxReportPackages: 2}, wantErr: layer.ErrLimit, lastWrite: "WriteReport Coalesce"},
		{name: "layer limit", cfg: indexer.Config{MaxLayerPackages: 1}, wantErr: layer.ErrLimit, lastWrite: "WriteReport ScanLayers"},
		{name: "load", failOn: "LoadLayerResults", wantErr: errInjected, lastWrite: "WriteReport Coalesce"},
		{name: "finish", failOn: "FinishManifest", wantErr: errInjected, lastWrite: "FinishManifest IndexFinished"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, tc.cfg)
			fx.st.failOn = tc.failOn
			f := fx.fence()
			if tc.lost {
				f.Token = 0
			}
			r, err := fx.ix.Index(context.Background(), f, fx.m, indexer.Run{Attempt: 1})
			if !errors.Is(err, tc.wantErr) || r != nil {
				t.Fatalf("got %v, %v; want an error wrapping %v", r, err, tc.wantErr)
			}
			w := fx.writes()
			if len(w) == 0 || !strings.HasPrefix(w[len(w)-1], tc.lastWrite) {
				t.Errorf("writes %v, want the last to be %s", w, tc.lastWrite)
			}
			if got := fx.st.reports[fx.m.Hash]; got != nil && got.State.Terminal() {
				t.Errorf("a failed run stored a %s report", got.State)
			}
		})
	}
}

func TestFail(t *testing.T) {
	fx := newFixture(t, indexer.Config{})
	if err := fx.ix.Fail(context.Background(), fx.fence(), fx.m.Hash, 2, errors.New("corrupt layer")); err != nil {
		t.Fatal(err)
	}
	r := fx.st.reports[fx.m.Hash]
	if r.State != report.StateIndexError || r.Err != "corrupt layer" || r.Attempt != 2 || r.ScannerState != fx.ix.State() {
		t.Fatalf("stored %+v", r)
	}
	stale := postgres.Fence{Digest: fx.m.Hash, Token: 7}
	if err := fx.ix.Fail(context.Background(), stale, fx.m.Hash, 2, errors.New("x")); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("fail under a stale fence: %v, want ErrLost", err)
	}
}
