package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"

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

// blobLayer is a layer blob held in memory.
type blobLayer struct {
	hash report.Digest
	blob []byte
	base bool
}

// buildLayers makes nBase base layers (a package database each, with some
// of its stanzas dropped, so that package sets vary) and nApp application
// layers (a random subset of appFiles each), every one distinct.
func buildLayers(fixtures string, nBase, nApp int, r *mrand.Rand) ([]blobLayer, []blobLayer, error) {
	read := func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(fixtures, p)) }
	var bases, apps []blobLayer
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

func gzLayer(files map[string][]byte, base bool) (blobLayer, error) {
	tb, err := devregistry.TarFromFiles(files)
	if err != nil {
		return blobLayer{}, err
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed) // a valid level: no error
	if _, err := zw.Write(tb); err != nil {
		return blobLayer{}, err
	}
	if err := zw.Close(); err != nil {
		return blobLayer{}, err
	}
	sum := sha256.Sum256(b.Bytes())
	return blobLayer{hash: report.Digest("sha256:" + hex.EncodeToString(sum[:])), blob: b.Bytes(), base: base}, nil
}

// memFetcher serves layer blobs from memory (indexer.Fetcher).
type memFetcher map[report.Digest][]byte

func (f memFetcher) Open(_ context.Context, l *report.Layer) (io.ReadCloser, error) {
	b, ok := f[l.Hash]
	if !ok {
		return nil, fmt.Errorf("no layer %s", l.Hash)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// manifests returns n distinct manifests: a base layer and one or two
// application layers each, picked at random.
func manifests(n int, bases, apps []blobLayer, r *mrand.Rand, seen map[string]bool) []*report.Manifest {
	out := make([]*report.Manifest, 0, n)
	for len(out) < n {
		ls := []blobLayer{bases[r.IntN(len(bases))]}
		for range 1 + r.IntN(2) {
			ls = append(ls, apps[r.IntN(len(apps))])
		}
		var key strings.Builder
		m := &report.Manifest{}
		for _, l := range ls {
			key.WriteString(string(l.hash))
			m.Layers = append(m.Layers, &report.Layer{Hash: l.hash, URI: "https://registry.example.com/v2/fleet/blobs/" + string(l.hash), Headers: map[string][]string{}})
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
