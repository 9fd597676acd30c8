package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/quay/claircore"
	"github.com/quay/claircore/alpine"
	"github.com/quay/claircore/dpkg"
	"github.com/quay/claircore/gobin"
	"github.com/quay/claircore/indexer"
	"github.com/quay/claircore/java"
	"github.com/quay/claircore/nodejs"
	"github.com/quay/claircore/python"
	"github.com/quay/claircore/rhel"
	"github.com/quay/claircore/rhel/rhcc"
	"github.com/quay/claircore/rpm"
	"github.com/quay/claircore/ruby"
	"github.com/quay/claircore/whiteout"

	"github.com/stevedore-dev/stevedore/bench/internal/scalefleet"
	"github.com/stevedore-dev/stevedore/internal/indexer/coalesce"
	"github.com/stevedore-dev/stevedore/internal/testing/scanlayer"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/all"
)

// storer writes manifests into claircore's store as libindex's controller
// does, layers once.
type storer struct {
	st       indexer.Store
	fl       *scalefleet.Fleet
	scanners []scanner.Scanner // Stevedore's, which read the layers
	vs       indexer.VersionedScanners
	pkg      indexer.VersionedScanners // claircore's package scanners
	dist     indexer.VersionedScanners
	repo     indexer.VersionedScanners

	// layerMu makes layers' writes one at a time: concurrent
	// IndexPackages calls deadlock on claircore's package table (rows
	// inserted in different orders).
	layerMu sync.Mutex
	mu      sync.Mutex
	layers  map[report.Digest]*layerEntry
	// ids are claircore's row ids of packages, distributions and
	// repositories, by their content (key).
	ids map[string]string
}

type layerEntry struct {
	once sync.Once
	cl   coalesce.Layer
	err  error
}

// newStorer registers libindex's default scanners (and nodejs', as npm
// packages are in the fleet) with st.
func newStorer(ctx context.Context, st indexer.Store, fl *scalefleet.Fleet) (*storer, error) {
	ecos := []*indexer.Ecosystem{
		dpkg.NewEcosystem(ctx), alpine.NewEcosystem(ctx), rhel.NewEcosystem(ctx), rpm.NewEcosystem(ctx),
		python.NewEcosystem(ctx), java.NewEcosystem(ctx), rhcc.NewEcosystem(ctx), gobin.NewEcosystem(ctx),
		ruby.NewEcosystem(ctx), nodejs.NewEcosystem(ctx), whiteout.NewEcosystem(ctx),
	}
	ps, ds, rs, fs, err := indexer.EcosystemsToScanners(ctx, ecos)
	if err != nil {
		return nil, fmt.Errorf("claircore scanners: %w", err)
	}
	s := &storer{st: st, fl: fl, scanners: all.Default(), layers: map[report.Digest]*layerEntry{}, ids: map[string]string{}}
	s.vs = indexer.MergeVS(ps, ds, rs, fs)
	for _, v := range ps {
		s.pkg = append(s.pkg, v)
	}
	for _, v := range ds {
		s.dist = append(s.dist, v)
	}
	for _, v := range rs {
		s.repo = append(s.repo, v)
	}
	if err := st.RegisterScanners(ctx, s.vs); err != nil {
		return nil, fmt.Errorf("register claircore scanners: %w", err)
	}
	return s, nil
}

func (s *storer) layersUsed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.layers)
}

// manifest stores m: the manifest, its new layers' contents, its index
// records and its report.
func (s *storer) manifest(ctx context.Context, m *report.Manifest) error {
	cm := claircore.Manifest{Hash: digest(m.Hash)}
	for _, l := range m.Layers {
		cm.Layers = append(cm.Layers, &claircore.Layer{Hash: digest(l.Hash)})
	}
	if err := s.st.PersistManifest(ctx, cm); err != nil {
		return fmt.Errorf("persist manifest %s: %w", m.Hash, err)
	}
	cls := make([]coalesce.Layer, len(m.Layers))
	for i, l := range m.Layers {
		cl, err := s.layer(ctx, l.Hash)
		if err != nil {
			return err
		}
		cls[i] = cl
	}
	ir, err := s.claircoreReport(coalesce.Coalesce(m.Hash, cls))
	if err != nil {
		return fmt.Errorf("manifest %s: %w", m.Hash, err)
	}
	if err := s.st.IndexManifest(ctx, ir); err != nil {
		return fmt.Errorf("index manifest %s: %w", m.Hash, err)
	}
	if err := s.st.SetIndexFinished(ctx, ir, s.vs); err != nil {
		return fmt.Errorf("set index finished %s: %w", m.Hash, err)
	}
	return nil
}

// layer returns the contents of layer d, read and stored in claircore's
// tables the first time.
func (s *storer) layer(ctx context.Context, d report.Digest) (coalesce.Layer, error) {
	s.mu.Lock()
	e := s.layers[d]
	if e == nil {
		e = &layerEntry{}
		s.layers[d] = e
	}
	s.mu.Unlock()
	e.once.Do(func() {
		if e.cl, e.err = s.read(ctx, d); e.err == nil {
			e.err = s.storeLayer(ctx, d, e.cl)
		}
	})
	return e.cl, e.err
}

// read reads layer d with Stevedore's scanners, as the indexer does.
func (s *storer) read(ctx context.Context, d report.Digest) (coalesce.Layer, error) {
	return scanlayer.Read(ctx, s.fl.Blobs[d], d, s.scanners, os.TempDir())
}

// storeLayer writes what layer d holds (cl, in claircore's form: the
// report of the layer alone) as claircore's layer scan does, and reads
// back the ids claircore gave its rows.
func (s *storer) storeLayer(ctx context.Context, d report.Digest, cl coalesce.Layer) error {
	s.layerMu.Lock()
	defer s.layerMu.Unlock()
	var ir claircore.IndexReport
	if err := recode(coalesce.Coalesce(d, []coalesce.Layer{cl}), &ir); err != nil {
		return fmt.Errorf("layer %s: %w", d, err)
	}
	l := &claircore.Layer{Hash: digest(d)}
	byScanner := map[indexer.VersionedScanner][]*claircore.Package{}
	for id, p := range ir.Packages {
		db := ""
		if envs := ir.Environments[id]; len(envs) > 0 {
			db = envs[0].PackageDB
		}
		p.PackageDB = db
		sc := pick(s.pkg, packageScanner(db))
		byScanner[sc] = append(byScanner[sc], p)
	}
	for sc, ps := range byScanner {
		if err := s.st.IndexPackages(ctx, ps, l, sc); err != nil {
			return fmt.Errorf("index packages of %s: %w", d, err)
		}
	}
	if len(ir.Distributions) > 0 {
		var ds []*claircore.Distribution
		did := ""
		for _, dist := range ir.Distributions {
			ds, did = append(ds, dist), dist.DID
		}
		if err := s.st.IndexDistributions(ctx, ds, l, pick(s.dist, did)); err != nil {
			return fmt.Errorf("index distributions of %s: %w", d, err)
		}
	}
	if len(ir.Repositories) > 0 {
		var rs []*claircore.Repository
		for _, r := range ir.Repositories {
			rs = append(rs, r)
		}
		if err := s.st.IndexRepositories(ctx, rs, l, pick(s.repo, "")); err != nil {
			return fmt.Errorf("index repositories of %s: %w", d, err)
		}
	}
	for _, v := range s.vs {
		if err := s.st.SetLayerScanned(ctx, l.Hash, v); err != nil {
			return fmt.Errorf("set layer %s scanned: %w", d, err)
		}
	}
	return s.readIDs(ctx, l.Hash)
}

// readIDs records the ids of what layer h holds, as claircore's coalescing
// reads them back (PackagesByLayer and the like).
func (s *storer) readIDs(ctx context.Context, h claircore.Digest) error {
	ps, err := s.st.PackagesByLayer(ctx, h, s.pkg)
	if err != nil {
		return err
	}
	ds, err := s.st.DistributionsByLayer(ctx, h, s.dist)
	if err != nil {
		return err
	}
	rs, err := s.st.RepositoriesByLayer(ctx, h, s.repo)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		s.ids[pkgKey(p)] = p.ID
		if p.Source != nil && p.Source.ID != "" {
			s.ids[pkgKey(p.Source)] = p.Source.ID
		}
	}
	for _, d := range ds {
		s.ids[distKey(d)] = d.ID
	}
	for _, r := range rs {
		s.ids[repoKey(r)] = r.ID
	}
	return nil
}

// claircoreReport is r in claircore's form, its ids claircore's row ids.
func (s *storer) claircoreReport(r *report.Report) (*claircore.IndexReport, error) {
	var in claircore.IndexReport
	if err := recode(r, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := func(key string) (string, error) {
		if v, ok := s.ids[key]; ok {
			return v, nil
		}
		return "", fmt.Errorf("no claircore row for %s", key)
	}
	out := &claircore.IndexReport{
		Hash: in.Hash, State: "IndexFinished", Success: true,
		Packages:      map[string]*claircore.Package{},
		Distributions: map[string]*claircore.Distribution{},
		Repositories:  map[string]*claircore.Repository{},
		Environments:  map[string][]*claircore.Environment{},
	}
	dists, repos := map[string]string{}, map[string]string{}
	for old, d := range in.Distributions {
		v, err := id(distKey(d))
		if err != nil {
			return nil, err
		}
		d.ID, dists[old] = v, v
		out.Distributions[v] = d
	}
	for old, rp := range in.Repositories {
		v, err := id(repoKey(rp))
		if err != nil {
			return nil, err
		}
		rp.ID, repos[old] = v, v
		out.Repositories[v] = rp
	}
	for old, p := range in.Packages {
		v, err := id(pkgKey(p))
		if err != nil {
			return nil, err
		}
		p.ID = v
		if p.Source == nil {
			p.Source = &claircore.Package{} // as claircore stores a package without one
		}
		if p.Source.ID, err = id(pkgKey(p.Source)); err != nil {
			return nil, err
		}
		out.Packages[v] = p
		for _, e := range in.Environments[old] {
			e.DistributionID = dists[e.DistributionID]
			for i, r := range e.RepositoryIDs {
				e.RepositoryIDs[i] = repos[r]
			}
			out.Environments[v] = append(out.Environments[v], e)
		}
	}
	return out, nil
}

// recode turns Stevedore's report (Clair's JSON form) into claircore's.
func recode(r *report.Report, out *claircore.IndexReport) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("claircore cannot decode the report: %w", err)
	}
	return nil
}

func digest(d report.Digest) claircore.Digest {
	cd, err := claircore.ParseDigest(string(d))
	if err != nil {
		panic(fmt.Sprintf("fleet digest %q: %v", d, err)) // the fleet makes sha256 digests only
	}
	return cd
}

func pkgKey(p *claircore.Package) string {
	return strings.Join([]string{"p", p.Name, p.Kind.String(), p.Version, p.Module, p.Arch}, "\x00")
}

func distKey(d *claircore.Distribution) string {
	return strings.Join([]string{"d", d.DID, d.Name, d.Version, d.VersionCodeName, d.VersionID, d.Arch, d.CPE.String(), d.PrettyName}, "\x00")
}

func repoKey(r *claircore.Repository) string {
	return strings.Join([]string{"r", r.Name, r.Key, r.URI, r.CPE.String()}, "\x00")
}

// packageScanner is the name part of claircore's scanner that reads the
// package database db.
func packageScanner(db string) string {
	switch {
	case strings.Contains(db, "dpkg"):
		return "dpkg"
	case strings.Contains(db, "apk"):
		return "apk"
	case strings.Contains(db, "rpm"):
		return "rpm"
	case strings.Contains(db, "node") || strings.HasPrefix(db, "nodejs"):
		return "nodejs"
	case strings.Contains(db, "python") || strings.Contains(db, "site-packages"):
		return "python"
	case strings.Contains(db, "gem") || strings.Contains(db, "ruby") || strings.Contains(db, "bundle"):
		return "ruby"
	}
	return db
}

// pick is the first scanner whose name holds part, else the first one.
func pick(vs indexer.VersionedScanners, part string) indexer.VersionedScanner {
	for _, v := range vs {
		if part != "" && strings.Contains(v.Name(), part) {
			return v
		}
	}
	return vs[0]
}
