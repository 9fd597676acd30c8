// Package scalefleet makes the fleet of bench/scale and bench/claircore: the
// same manifests over the same shared layers for a given layer count, made
// from the fixtures' real package databases (dpkg, apk and rpm databases with
// their os-release; a dpkg or apk database has about one stanza in eight
// dropped per layer, so package sets vary) and application layers of npm,
// Python and Ruby manifests (a random subset each). A manifest is a base
// layer and one or two application layers, at random, every manifest
// distinct. The sequence is fixed (a seeded generator): two commands asking
// for the same layer count and manifest counts get the same fleet.
package scalefleet

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

// osBase is one kind of base layer: a real package database of the
// fixtures and the os-release it goes with.
type osBase struct {
	osRelease string // fixture path under testdata/fixtures/osrelease
	db        string // fixture path
	at        string // where the database goes in the layer
	stanzas   bool   // a text database of blank-line-separated stanzas (some dropped per layer)
}

var osBases = []osBase{
	{"claircore_debian-12_os-release", "dpkg/trivy_valid.status", "var/lib/dpkg/status", true},
	{"claircore_debian-11_os-release", "dpkg/claircore_texlive.status", "var/lib/dpkg/status", true},
	{"claircore_debian-12_os-release", "dpkg/claircore_postgresql.status", "var/lib/dpkg/status", true},
	{"claircore_debian-10_os-release", "dpkg/scalibr_valid", "var/lib/dpkg/status", true},
	{"trivy_alpine-310_os-release", "apk/trivy_alpine-310_installed", "lib/apk/db/installed", true},
	{"trivy_alpine-311_os-release", "apk/trivy_alpine-311_installed", "lib/apk/db/installed", true},
	{"claircore_alpine-3.18_os-release", "apk/scalibr_installed", "lib/apk/db/installed", true},
	{"trivy_rhel_os-release", "rpm/preflight_sqlite_rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite", false},
	{"syft_mariner_os-release", "rpm/go-rpmdb_cbl-mariner-2.0_rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite", false},
	{"trivy_rhel_os-release", "rpm/go-rpmdb_amazonlinux2023-plain_rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite", false},
}

// appFiles are the manifests an application layer picks from: npm, Python
// and Ruby package manifests of the fixtures.
var appFiles = []struct{ fixture, at string }{
	{"npm/syft_actions-core_package.json", "app/node_modules/@actions/core/package.json"},
	{"npm/syft_cowsay_package.json", "app/node_modules/cowsay/package.json"},
	{"npm/syft_npm-6.14.6_package.json", "usr/lib/node_modules/npm/package.json"},
	{"npm/trivy_happy_nm-babel_parser_package.json", "app/node_modules/@babel/parser/package.json"},
	{"npm/trivy_happy_nm-body-parser_package.json", "app/node_modules/body-parser/package.json"},
	{"npm/trivy_happy_nm-express_package.json", "app/node_modules/express/package.json"},
	{"npm/trivy_happy_nm-ms_package.json", "app/node_modules/ms/package.json"},
	{"npm/trivy_happy_nm-express_nm-debug_package.json", "app/node_modules/debug/package.json"},
	{"python/trivy_Flask-2.0.0.dist-info_METADATA", "usr/lib/python3.11/site-packages/Flask-2.0.0.dist-info/METADATA"},
	{"python/trivy_click-8.0.0.dist-info_METADATA", "usr/lib/python3.11/site-packages/click-8.0.0.dist-info/METADATA"},
	{"python/trivy_annotated_types-0.7.0.dist-info_METADATA", "usr/lib/python3.11/site-packages/annotated_types-0.7.0.dist-info/METADATA"},
	{"python/trivy_distlib-0.3.1.dist-info_METADATA", "usr/lib/python3.11/site-packages/distlib-0.3.1.dist-info/METADATA"},
	{"python/trivy_setuptools-51.3.3.dist-info_METADATA", "usr/lib/python3.11/site-packages/setuptools-51.3.3.dist-info/METADATA"},
	{"python/trivy_typing_extensions-4.4.0.dist-info_METADATA", "usr/lib/python3.11/site-packages/typing_extensions-4.4.0.dist-info/METADATA"},
	{"ruby/syft_bundler.gemspec", "usr/local/bundle/specifications/bundler.gemspec"},
	{"ruby/syft_formatador.gemspec", "usr/local/bundle/specifications/formatador.gemspec"},
	{"ruby/trivy_normal00.gemspec", "usr/local/bundle/specifications/normal00.gemspec"},
	{"ruby/scalibr_rss-0.2.9.gemspec", "usr/local/bundle/specifications/rss-0.2.9.gemspec"},
}

// Layer is a layer blob held in memory.
type Layer struct {
	Hash report.Digest
	Blob []byte
	// Base is set on a base layer (an OS package database).
	Base bool
}

// Fleet is the unique layers and the manifests made of them so far.
type Fleet struct {
	// Bases and Apps are the base and application layers.
	Bases, Apps []Layer
	// Blobs serves every layer's blob (indexer.Fetcher).
	Blobs MemFetcher
	r     *mrand.Rand
	seen  map[string]bool
}

// New builds nLayers unique layers (a tenth of them base layers) from the
// fixtures directory.
func New(fixtures string, nLayers int) (*Fleet, error) {
	r := mrand.New(mrand.NewPCG(13, 5))
	nBase := max(1, nLayers/10)
	bases, apps, err := buildLayers(fixtures, nBase, max(1, nLayers-nBase), r)
	if err != nil {
		return nil, fmt.Errorf("fleet layers (run from the module root, or give the fixtures directory): %w", err)
	}
	f := &Fleet{Bases: bases, Apps: apps, Blobs: MemFetcher{}, r: r, seen: map[string]bool{}}
	for _, l := range bases {
		f.Blobs[l.Hash] = l.Blob
	}
	for _, l := range apps {
		f.Blobs[l.Hash] = l.Blob
	}
	return f, nil
}

// BlobBytes is the size of all the layer blobs.
func (f *Fleet) BlobBytes() int64 {
	var n int64
	for _, b := range f.Blobs {
		n += int64(len(b))
	}
	return n
}

// buildLayers makes nBase base layers (a package database each, with some
// of its stanzas dropped, so that package sets vary) and nApp application
// layers (a random subset of appFiles each), every one distinct.
func buildLayers(fixtures string, nBase, nApp int, r *mrand.Rand) ([]Layer, []Layer, error) {
	read := func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(fixtures, p)) }
	var bases, apps []Layer
	for i := range nBase {
		ob := osBases[i%len(osBases)]
		rel, err := read("osrelease/" + ob.osRelease)
		if err != nil {
			return nil, nil, err
		}
		db, err := read(ob.db)
		if err != nil {
			return nil, nil, err
		}
		if ob.stanzas && i >= len(osBases) {
			db = dropStanzas(db, r)
		}
		l, err := gzLayer(map[string][]byte{"etc/os-release": rel, ob.at: db, "etc/bench-layer": fmt.Appendf(nil, "base %d\n", i)}, true)
		if err != nil {
			return nil, nil, err
		}
		bases = append(bases, l)
	}
	for i := range nApp {
		files := map[string][]byte{"etc/bench-layer": fmt.Appendf(nil, "app %d\n", i)}
		for _, f := range appFiles {
			if r.IntN(3) == 0 {
				continue
			}
			b, err := read(f.fixture)
			if err != nil {
				return nil, nil, err
			}
			files[f.at] = b
		}
		l, err := gzLayer(files, false)
		if err != nil {
			return nil, nil, err
		}
		apps = append(apps, l)
	}
	return bases, apps, nil
}

// dropStanzas drops about one stanza in eight of a dpkg status or apk
// installed database (blank-line separated), keeping the order.
func dropStanzas(db []byte, r *mrand.Rand) []byte {
	var out bytes.Buffer
	for _, s := range strings.Split(string(db), "\n\n") {
		if r.IntN(8) == 0 {
			continue
		}
		out.WriteString(s)
		out.WriteString("\n\n")
	}
	return out.Bytes()
}

// gzLayer is the gzip'd tar of files.
func gzLayer(files map[string][]byte, base bool) (Layer, error) {
	tb, err := devregistry.TarFromFiles(files)
	if err != nil {
		return Layer{}, err
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed) // a valid level: no error
	if _, err := zw.Write(tb); err != nil {
		return Layer{}, err
	}
	if err := zw.Close(); err != nil {
		return Layer{}, err
	}
	sum := sha256.Sum256(b.Bytes())
	return Layer{Hash: report.Digest("sha256:" + hex.EncodeToString(sum[:])), Blob: b.Bytes(), Base: base}, nil
}

// MemFetcher serves layer blobs from memory (indexer.Fetcher), by digest.
type MemFetcher map[report.Digest][]byte

func (f MemFetcher) Open(_ context.Context, l *report.Layer) (io.ReadCloser, error) {
	b, ok := f[l.Hash]
	if !ok {
		return nil, fmt.Errorf("no layer %s", l.Hash)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Manifests returns the next n distinct manifests of the fleet: a base
// layer and one or two application layers each, picked at random.
func (f *Fleet) Manifests(n int) []*report.Manifest {
	r, seen := f.r, f.seen
	out := make([]*report.Manifest, 0, n)
	for len(out) < n {
		ls := []Layer{f.Bases[r.IntN(len(f.Bases))]}
		for range 1 + r.IntN(2) {
			ls = append(ls, f.Apps[r.IntN(len(f.Apps))])
		}
		var key strings.Builder
		m := &report.Manifest{}
		for _, l := range ls {
			key.WriteString(string(l.Hash))
			m.Layers = append(m.Layers, &report.Layer{Hash: l.Hash, URI: "https://registry.example.com/v2/fleet/blobs/" + string(l.Hash), Headers: map[string][]string{}})
		}
		if seen[key.String()] {
			continue
		}
		seen[key.String()] = true
		sum := sha256.Sum256([]byte("manifest " + key.String()))
		m.Hash = report.Digest("sha256:" + hex.EncodeToString(sum[:]))
		out = append(out, m)
	}
	return out
}

// ParseSizes parses a -sizes flag: growing positive manifest counts,
// comma-separated.
func ParseSizes(s string) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || (len(ns) > 0 && n <= ns[len(ns)-1]) {
			return nil, fmt.Errorf("sizes %q: want growing positive counts", s)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// Each calls fn on every manifest of ms, parallel at a time, and returns
// the errors (a goroutine stops at its first).
func Each(ms []*report.Manifest, parallel int, fn func(*report.Manifest) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, parallel)
	for w := range parallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ms) || errs[w] != nil {
					return
				}
				errs[w] = fn(ms[i])
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
