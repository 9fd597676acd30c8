package claircore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver"
	"github.com/quay/claircore"
	"github.com/quay/claircore/gobin"
	"github.com/quay/claircore/libvuln/driver"
	"github.com/quay/claircore/matchers"
	"github.com/quay/claircore/nodejs"
	"github.com/quay/claircore/pkg/pep440"
	"github.com/quay/claircore/toolkit/types"

	"github.com/stevedore-dev/stevedore/internal/ecosystem"
	"github.com/stevedore-dev/stevedore/internal/indexer/coalesce"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/internal/testing/scanlayer"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner/all"
)

// The matchers' names (claircore v1.5.54).
const (
	mGo     = "gobin"
	mMaven  = "java-maven"
	mNPM    = "nodejs"
	mPyPI   = "python"
	mGem    = "ruby-gem"
	mDebian = "debian-matcher"
	mUbuntu = "ubuntu-matcher"
	mAlpine = "alpine-matcher"
	mRHEL   = "rhel"
	mOracle = "oracle"
	mAWS    = "aws-matcher"
	mSUSE   = "suse"
	mPhoton = "photon"
)

// languageMatcher is the matcher that must select a language package.
var languageMatcher = map[ecosystem.Ecosystem]string{
	ecosystem.Go:    mGo,
	ecosystem.Maven: mMaven,
	ecosystem.NPM:   mNPM,
	ecosystem.PyPI:  mPyPI,
	ecosystem.Gem:   mGem,
}

// entry is a file of a layer: its path, mode and content (a fixture, or
// bytes).
type entry struct {
	path    string
	fixture string
	mode    int64
}

func file(path, fixture string) entry { return entry{path: path, fixture: fixture, mode: 0o644} }
func exe(path, fixture string) entry  { return entry{path: path, fixture: fixture, mode: 0o755} }

// image is a test image: its layers, bottom first, each a list of files or
// a real layer from the corpus; the matcher that must select its OS
// packages ("" for none); and the kinds of packages it must hold.
type image struct {
	name   string
	layers []layerSpec
	os     string
	// want are package kinds the report must hold: an ecosystem, or
	// "dpkg", "apk", "rpm".
	want []string
}

type layerSpec struct {
	files []entry
	// real names a layer tarball of the corpus; dockerSave says it is a
	// docker-save archive whose (only) layer.tar is the layer.
	real       string
	dockerSave bool
}

// languageLayer holds real Go binaries, jars, npm, Python and Ruby packages
// of the corpus where images keep them.
var languageLayer = layerSpec{files: []entry{
	exe("usr/local/bin/trivy-test", "gobin/trivy_test.elf"),
	exe("usr/local/bin/ldflags", "gobin/trivy_main-version-via-ldflags.elf"),
	exe("usr/local/bin/goexperiment", "gobin/trivy_goexperiment"),
	exe("usr/local/bin/replaced", "gobin/scalibr_binary_with_module_replacement-linux-amd64"),
	file("opt/app/example-java-app-maven-0.1.0.jar", "java/syft_example-java-app-maven-0.1.0.jar"),
	file("opt/app/jackson-annotations-2.15.0-rc2.jar", "java/trivy_jackson-annotations-2.15.0-rc2.jar"),
	file("opt/app/hadoop-shaded-guava-1.1.0-SNAPSHOT.jar", "java/trivy_hadoop-shaded-guava-1.1.0-SNAPSHOT.jar"),
	file("opt/app/nested.jar", "java/trivy_nested.jar"),
	file("opt/app/gradle.war", "java/trivy_gradle.war"),
	file("usr/lib/node_modules/express/package.json", "npm/trivy_happy_nm-express_package.json"),
	file("usr/lib/node_modules/express/node_modules/debug/package.json", "npm/trivy_happy_nm-express_nm-debug_package.json"),
	file("usr/lib/node_modules/body-parser/package.json", "npm/trivy_happy_nm-body-parser_package.json"),
	file("usr/lib/node_modules/ms/package.json", "npm/trivy_happy_nm-ms_package.json"),
	file("usr/lib/node_modules/@babel/parser/package.json", "npm/trivy_happy_nm-babel_parser_package.json"),
	file("usr/lib/node_modules/@actions/core/package.json", "npm/syft_actions-core_package.json"),
	file("usr/lib/node_modules/npm/package.json", "npm/syft_npm-6.14.6_package.json"),
	file("usr/lib/node_modules/cowsay/package.json", "npm/syft_cowsay_package.json"),
	file("usr/local/lib/python3.11/site-packages/Flask-2.0.0.dist-info/METADATA", "python/trivy_Flask-2.0.0.dist-info_METADATA"),
	file("usr/local/lib/python3.11/site-packages/click-8.0.0.dist-info/METADATA", "python/trivy_click-8.0.0.dist-info_METADATA"),
	file("usr/local/lib/python3.11/site-packages/typing_extensions-4.4.0.dist-info/METADATA", "python/trivy_typing_extensions-4.4.0.dist-info_METADATA"),
	file("usr/local/lib/python3.11/site-packages/annotated_types-0.7.0.dist-info/METADATA", "python/trivy_annotated_types-0.7.0.dist-info_METADATA"),
	file("usr/local/lib/python3.11/site-packages/setuptools-51.3.3.egg-info/PKG-INFO", "python/trivy_setuptools-51.3.3.egg-info_PKG-INFO"),
	file("usr/local/lib/python3.11/site-packages/distlib-0.3.1-py3.9.egg-info", "python/trivy_distlib-0.3.1-py3.9.egg-info"),
	file("usr/local/lib/python3.11/site-packages/pyOpenSSL-26.0.0.dist-info/METADATA", "python/scalibr_pyopenssl-26.0.0.dist-info"),
	file("usr/lib/python2.7/dist-packages/Python-2.7.egg-info", "python/syft_Python-2.7.egg-info"),
	file("usr/local/bundle/specifications/rss-0.2.9.gemspec", "ruby/scalibr_rss-0.2.9.gemspec"),
	file("usr/local/bundle/specifications/bundler.gemspec", "ruby/syft_bundler.gemspec"),
	file("usr/local/bundle/specifications/formatador.gemspec", "ruby/syft_formatador.gemspec"),
	file("usr/lib/ruby/gems/3.1.0/specifications/default/normal00.gemspec", "ruby/trivy_normal00.gemspec"),
	file("usr/lib/ruby/gems/3.1.0/specifications/multiple_licenses.gemspec", "ruby/trivy_multiple_licenses.gemspec"),
}}

var languages = []string{"go", "maven", "npm", "pypi", "rubygems"}

var images = []image{
	{
		name: "debian 12 with language packages",
		layers: []layerSpec{
			{files: []entry{
				file("etc/os-release", "osrelease/claircore_debian-12_os-release"),
				file("var/lib/dpkg/status", "dpkg/claircore_postgresql.status"),
			}},
			languageLayer,
			// A Python package whose version is not PEP 440 (claircore's
			// own test layer).
			{real: "python/claircore_layer-with-bad-version.tar"},
		},
		os:   mDebian,
		want: append([]string{"dpkg"}, languages...),
	},
	{
		name: "ubuntu 18.04",
		layers: []layerSpec{{files: []entry{
			file("etc/os-release", "osrelease/claircore_ubuntu-18.04_os-release"),
			file("etc/lsb-release", "osrelease/claircore_ubuntu-18.04_lsb-release"),
			file("var/lib/dpkg/status", "dpkg/trivy_valid.status"),
		}}},
		os:   mUbuntu,
		want: []string{"dpkg"},
	},
	{
		name:   "alpine 3.10 (the official image's layer) with language packages",
		layers: []layerSpec{{real: "layers/trivy_alpine-310.tar.gz", dockerSave: true}, languageLayer},
		os:     mAlpine,
		want:   append([]string{"apk"}, languages...),
	},
	{
		name: "ubi 8 with a content manifest",
		layers: []layerSpec{
			{files: []entry{
				file("etc/os-release", "osrelease/claircore_rhel-releasefiles-8_os-release"),
				file("etc/redhat-release", "osrelease/claircore_rhel-releasefiles-8_redhat-release"),
				file("var/lib/rpm/Packages", "rpm/go-rpmdb_libuuid_Packages"),
			}},
			{real: "layers/claircore_layer-with-embedded-cs.tar"},
		},
		os:   mRHEL,
		want: []string{"rpm"},
	},
	{
		// Without a content manifest nor enrichment data, Clair's
		// RHEL matcher has no repository to select: no matcher takes
		// the packages (the IndexPartial case).
		name: "ubi 8 without repository data",
		layers: []layerSpec{{files: []entry{
			file("etc/os-release", "osrelease/claircore_rhel-releasefiles-8_os-release"),
			file("var/lib/rpm/Packages", "rpm/go-rpmdb_libuuid_Packages"),
		}}},
		os:   "",
		want: []string{"rpm"},
	},
	{
		name: "oracle linux 8",
		layers: []layerSpec{{files: []entry{
			file("etc/os-release", "osrelease/syft_oraclelinux_os-release"),
			file("var/lib/rpm/Packages", "rpm/preflight_bdb_Packages"),
		}}},
		os:   mOracle,
		want: []string{"rpm"},
	},
	{
		name: "amazon linux 2023 with language packages",
		layers: []layerSpec{
			{files: []entry{
				file("etc/os-release", "osrelease/syft_amazon_os-release"),
				file("var/lib/rpm/rpmdb.sqlite", "rpm/go-rpmdb_amazonlinux2023-plain_rpmdb.sqlite"),
			}},
			languageLayer,
		},
		os:   mAWS,
		want: append([]string{"rpm"}, languages...),
	},
	{
		name: "sles 15",
		layers: []layerSpec{{files: []entry{
			file("etc/os-release", "osrelease/trivy_sles_os-release"),
			file("usr/lib/sysimage/rpm/Packages.db", "rpm/go-rpmdb_sle15-bci_Packages.db"),
		}}},
		os:   mSUSE,
		want: []string{"rpm"},
	},
	{
		name: "distroless debian 11",
		layers: []layerSpec{{files: []entry{
			file("etc/os-release", "osrelease/claircore_debian-distroless-11_os-release"),
			file("var/lib/dpkg/status.d/libsqlite3-0", "dpkg/syft_status.d_libsqlite3-0"),
		}}},
		os:   mDebian,
		want: []string{"dpkg"},
	},
	{
		name: "opensuse leap 15",
		layers: []layerSpec{{files: []entry{
			file("etc/os-release", "osrelease/trivy_opensuseleap-15.2.1_os-release"),
			file("usr/lib/sysimage/rpm/Packages.db", "rpm/go-rpmdb_sle15-bci_Packages.db"),
		}}},
		os:   mSUSE,
		want: []string{"rpm"},
	},
	{
		// Clair has no matcher for Rocky Linux nor Wolfi: their
		// packages must not leak into another distribution's matcher.
		name: "rocky linux 8",
		layers: []layerSpec{{files: []entry{
			file("etc/os-release", "osrelease/syft_rockylinux-from-os-release_os-release"),
			file("var/lib/rpm/Packages", "rpm/go-rpmdb_libuuid_Packages"),
		}}},
		os:   "",
		want: []string{"rpm"},
	},
	{
		name: "wolfi",
		layers: []layerSpec{{files: []entry{
			file("etc/os-release", "osrelease/syft_wolfi_os-release"),
			file("lib/apk/db/installed", "apk/syft_multiple-2_installed"),
		}}},
		os:   "",
		want: []string{"apk"},
	},
	{
		name: "photon 4",
		layers: []layerSpec{{files: []entry{
			file("etc/os-release", "osrelease/trivy_photon_os-release"),
			file("var/lib/rpm/rpmdb.sqlite", "rpm/preflight_sqlite_rpmdb.sqlite"),
		}}},
		os:   mPhoton,
		want: []string{"rpm"},
	},
}

// TestMatchersSelectStevedoreRecords builds Stevedore's report of each
// image with Stevedore's layer reader, scanners and coalescer, serialises it
// as Stevedore serves it (encoding/json of report.Report), decodes it as
// claircore's IndexReport, and runs the Filter of every matcher Clair runs
// by default, and of the nodejs matcher, over its IndexRecords: each
// package must be selected by exactly the matcher of its ecosystem (a
// language package) or of the image's distribution (an OS package), and
// its record must hold what that matcher's Query reads.
func TestMatchersSelectStevedoreRecords(t *testing.T) {
	ctx := context.Background()
	ms := clairMatchers(t, ctx)
	for _, img := range images {
		t.Run(img.name, func(t *testing.T) {
			report := buildReport(t, ctx, img)
			b, err := json.Marshal(report)
			if err != nil {
				t.Fatal(err)
			}
			var ir claircore.IndexReport
			if err := json.Unmarshal(b, &ir); err != nil {
				t.Fatalf("claircore cannot decode Stevedore's report: %v", err)
			}
			records := ir.IndexRecords()
			if len(records) == 0 {
				t.Fatal("no index records")
			}
			kinds := map[string]int{}
			perPackage := map[string]int{}
			for _, rec := range records {
				sp := report.Packages[rec.Package.ID]
				if sp == nil {
					t.Fatalf("record of package %q, which Stevedore's report does not have", rec.Package.ID)
				}
				perPackage[rec.Package.ID]++
				want, kind := expected(t, img, sp, rec)
				kinds[kind]++
				if kind == string(ecosystem.Go) {
					if rec.Package.Name == "stdlib" {
						kinds["go stdlib"]++
					} else {
						kinds["go module"]++
					}
				}
				var got []string
				for _, m := range ms {
					// What Clair's matcher controller does
					// (findInterested): unmatchable versions
					// are skipped, then the matcher filters.
					if rec.Package.NormalizedVersion.Kind != claircore.UnmatchableKind && m.Filter(rec) {
						got = append(got, m.Name())
						checkQuery(t, m, rec)
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s %s %s (%s): selected by %q, want %q (record: repository %+v, distribution %+v, normalized %q)",
						kind, rec.Package.Name, rec.Package.Version, sp.PURL, got, want,
						rec.Repository, rec.Distribution, mustText(rec.Package.NormalizedVersion))
				}
				checkNormalized(t, sp, rec.Package)
			}
			for id := range report.Packages {
				if len(report.Environments[id]) > 0 && perPackage[id] == 0 {
					t.Errorf("package %s (%s) has environments but no index record", id, report.Packages[id].Name)
				}
			}
			want := img.want
			if slices.Contains(want, string(ecosystem.Go)) {
				want = append(slices.Clone(want), "go stdlib", "go module")
			}
			for _, k := range want {
				if kinds[k] == 0 {
					t.Errorf("the report has no %s package; records per kind: %v", k, kinds)
				}
			}
			t.Logf("%d records per kind: %v", len(records), kinds)
		})
	}
}

// expected returns the matchers that must select a record, sorted, and the
// package's kind.
func expected(t *testing.T, img image, sp *report.Package, rec *claircore.IndexRecord) ([]string, string) {
	t.Helper()
	if e := ecosystem.Of(sp); e != ecosystem.None {
		if e == ecosystem.PyPI {
			// claircore indexes no Python package whose version is
			// not PEP 440; Stevedore reports it, for no matcher.
			if _, err := pep440.Parse(rec.Package.Version); err != nil {
				return nil, string(e)
			}
		}
		return []string{languageMatcher[e]}, string(e)
	}
	var kind string
	switch {
	case strings.HasPrefix(sp.PURL, "pkg:deb/"):
		kind = "dpkg"
	case strings.HasPrefix(sp.PURL, "pkg:apk/"):
		kind = "apk"
	case strings.HasPrefix(sp.PURL, "pkg:rpm/"):
		kind = "rpm"
	default:
		t.Fatalf("package %s %s (%s): neither a language package nor a dpkg, apk or rpm one", sp.Name, sp.Version, sp.PURL)
	}
	if img.os == "" {
		return nil, kind
	}
	return []string{img.os}, kind
}

// checkQuery checks that a record selected by m holds what Clair's
// vulnerability store reads for m's query (claircore's buildGetQuery): the
// package's name, kind and source, and the distribution or repository
// fields of each constraint; and, for a matcher that filters versions in the
// database (gobin, nodejs), a normalized version of the kind it compares.
func checkQuery(t *testing.T, m driver.Matcher, rec *claircore.IndexRecord) {
	t.Helper()
	p := rec.Package
	if p.Name == "" || p.Source == nil || p.Kind != types.BinaryPackage {
		t.Errorf("%s: package %q: name, source (%v) and kind (%v, want binary) are read by every query", m.Name(), p.Name, p.Source, p.Kind)
	}
	for _, c := range m.Query() {
		switch c {
		case driver.DistributionDID, driver.DistributionName, driver.DistributionVersionID, driver.DistributionVersion,
			driver.DistributionVersionCodeName, driver.DistributionPrettyName, driver.DistributionCPE, driver.DistributionArch:
			if rec.Distribution == nil {
				t.Errorf("%s: package %q: the query reads the distribution (%v) and the record has none", m.Name(), p.Name, c)
			}
		case driver.RepositoryName, driver.RepositoryKey:
			if rec.Repository == nil {
				t.Errorf("%s: package %q: the query reads the repository (%v) and the record has none", m.Name(), p.Name, c)
			}
		}
	}
	if c := rec.Distribution; c != nil && slices.Contains(m.Query(), driver.DistributionDID) && c.DID == "" {
		t.Errorf("%s: package %q: the distribution has no did", m.Name(), p.Name)
	}
	if _, ok := m.(driver.VersionFilter); ok && p.NormalizedVersion.Kind != "semver" && validSemver(m.Name(), p.Version) {
		t.Errorf("%s: package %q %q: normalized version %q, want a semver one (the matcher compares versions only in the database)",
			m.Name(), p.Name, p.Version, mustText(p.NormalizedVersion))
	}
}

// validSemver reports whether claircore's scanner for the matcher's
// ecosystem would give version v a normalized version.
func validSemver(matcher, v string) bool {
	switch matcher {
	case mGo:
		_, err := gobin.ParseVersion(v)
		return err == nil
	case mNPM:
		_, err := semver.NewVersion(v)
		return err == nil
	}
	return false
}

// checkNormalized checks a record's package against what claircore's
// indexer computes from the same version: Go's standard library without
// "go", Python names in lower case, and the normalized version claircore's scanner of the ecosystem
// sets (none for Maven and RubyGems, and for OS packages here).
func checkNormalized(t *testing.T, sp *report.Package, p *claircore.Package) {
	t.Helper()
	var want claircore.Version
	switch e := ecosystem.Of(sp); e {
	case ecosystem.Go:
		if p.Name == "stdlib" && strings.HasPrefix(p.Version, "go") {
			t.Errorf("stdlib version %q: claircore writes it without \"go\"", p.Version)
		}
		if v, err := gobin.ParseVersion(p.Version); err == nil {
			want = v
		}
	case ecosystem.NPM:
		if v, err := semver.NewVersion(p.Version); err == nil {
			want = claircore.FromSemver(v)
		}
	case ecosystem.PyPI:
		if p.Name != strings.ToLower(p.Name) {
			t.Errorf("python package %q: claircore writes Python names in lower case", p.Name)
		}
		if v, err := pep440.Parse(p.Version); err == nil {
			want = v.Version()
		}
	}
	if p.NormalizedVersion != want {
		t.Errorf("%s %s (%s): normalized version %q, claircore computes %q", p.Name, p.Version, sp.PURL, mustText(p.NormalizedVersion), mustText(want))
	}
}

func mustText(v claircore.Version) string {
	b, _ := v.MarshalText()
	return string(b)
}

// clairMatchers returns the matchers Clair runs by default (claircore's
// matchers/defaults, configured as Clair configures them with no options)
// and the nodejs matcher, which claircore does not enable by default.
func clairMatchers(t *testing.T, ctx context.Context) []driver.Matcher {
	t.Helper()
	ms, err := matchers.NewMatchers(ctx, http.DefaultClient, matchers.WithOutOfTree([]driver.Matcher{&nodejs.Matcher{}}))
	if err != nil {
		t.Fatalf("claircore's matchers: %v", err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name())
	}
	for _, n := range []string{mGo, mMaven, mNPM, mPyPI, mGem, mDebian, mUbuntu, mAlpine, mRHEL, mOracle, mAWS, mSUSE, mPhoton} {
		if !slices.Contains(names, n) {
			t.Fatalf("claircore's matchers %q do not include %q", names, n)
		}
	}
	return ms
}

// buildReport reads the image's layers with Stevedore's layer reader and
// default scanners and coalesces their results as the indexer does.
func buildReport(t *testing.T, ctx context.Context, img image) *report.Report {
	t.Helper()
	ss := all.Default()
	var cl []coalesce.Layer
	var digests []string
	for i, spec := range img.layers {
		blob := layerBlob(t, spec)
		sum := sha256.Sum256(blob)
		d := report.Digest("sha256:" + hex.EncodeToString(sum[:]))
		digests = append(digests, string(d))
		l, err := scanlayer.Read(ctx, blob, d, ss, t.TempDir())
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		cl = append(cl, l)
	}
	sum := sha256.Sum256([]byte(strings.Join(digests, "\n")))
	return coalesce.Coalesce(report.Digest("sha256:"+hex.EncodeToString(sum[:])), cl)
}

// layerBlob returns a layer's bytes: a real layer of the corpus, or a tar
// of the spec's files.
func layerBlob(t *testing.T, spec layerSpec) []byte {
	t.Helper()
	if spec.real != "" {
		b, err := os.ReadFile(fixtures.Path(t, spec.real))
		if err != nil {
			t.Fatal(err)
		}
		if !spec.dockerSave {
			return b
		}
		return dockerSaveLayer(t, spec.real, b)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, e := range spec.files {
		b, err := os.ReadFile(fixtures.Path(t, e.fixture))
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(e.path, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.path, Mode: e.mode, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dockerSaveLayer returns the one layer.tar of a gzipped docker-save archive.
func dockerSaveLayer(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	tr := tar.NewReader(zr)
	var layer []byte
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.HasSuffix(hdr.Name, "/layer.tar") {
			if layer != nil {
				t.Fatalf("%s: more than one layer", name)
			}
			if layer, err = io.ReadAll(tr); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	if layer == nil {
		t.Fatalf("%s: no layer.tar", name)
	}
	return layer
}

// TestNormalizedVersionsAgree compares Stevedore's normalized versions with
// claircore's own functions on versions chosen for their edges.
func TestNormalizedVersionsAgree(t *testing.T) {
	versions := []string{
		"", "1", "1.2", "1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2.3+build.5", "v0.0.0-20230321023759-10a507213a29",
		"v2.1.0+incompatible", "1.21rc2", "(devel)", "1.2.3.4", "v1.2.1234567890", "01.002.0003",
		"4294967297.0.0", "99999999999999999999.0.0", "2147483648.1.1", "latest", "^1.2.3", "1.x",
		"1!2.0", "1.2.3.4.5.6", "1.0a1", "1.0alpha1", "1.0b2", "1.0rc3", "1.0c3", "1.0pre4", "1.0preview5",
		"1.0.post2", "1.0-3", "1.0.dev4", "1.0a1.dev4", "1.0.post1.dev4", "1.0+local.7", "release-2.7",
		"2.0.0-SNAPSHOT", "27.0-jre", "1.0.0.Final", "v", "-1", "1..2", "9999999999", "1.0_rc1", "1.0-dev",
	}
	for _, s := range versions {
		cases := []struct {
			e    ecosystem.Ecosystem
			want claircore.Version
		}{
			{ecosystem.Go, func() (v claircore.Version) { v, _ = gobin.ParseVersion(s); return }()},
			{ecosystem.NPM, func() (v claircore.Version) {
				if sv, err := semver.NewVersion(s); err == nil {
					v = claircore.FromSemver(sv)
				}
				return
			}()},
			{ecosystem.PyPI, func() (v claircore.Version) {
				if pv, err := pep440.Parse(s); err == nil {
					v = pv.Version()
				}
				return
			}()},
		}
		for _, c := range cases {
			got := c.e.NormalizedVersion(s)
			var want string
			if c.want.Kind != "" {
				want = mustText(c.want)
			}
			if got != want {
				t.Errorf("%s %q: Stevedore %q, claircore %q", c.e, s, got, want)
			}
			// The wire form decodes to claircore's version.
			var dec claircore.Version
			if err := dec.UnmarshalText([]byte(got)); err != nil || dec != c.want {
				t.Errorf("%s %q: %q decodes to %+v (%v), want %+v", c.e, s, got, dec, err, c.want)
			}
		}
	}
}
