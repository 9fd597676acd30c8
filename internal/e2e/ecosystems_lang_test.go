package e2e_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
)

// tarFile is a member of a hand-made layer: unlike h.push's layers, it has
// a mode (Go binaries are found by their executable bit).
type tarFile struct {
	path string
	mode int64
	body []byte
}

// pushTars pushes an image whose layers are the given files, with their
// modes, and returns its manifest as the dispatcher's resolver sees it.
func (h *harness) pushTars(repoTag string, layers ...[]tarFile) *report.Manifest {
	h.t.Helper()
	var ls []v1.Layer
	for _, files := range layers {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, f := range files {
			if err := tw.WriteHeader(&tar.Header{Name: f.path, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
				h.t.Fatal(err)
			}
			if _, err := tw.Write(f.body); err != nil {
				h.t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			h.t.Fatal(err)
		}
		b := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithCompressedCaching)
		if err != nil {
			h.t.Fatal(err)
		}
		ls = append(ls, l)
	}
	return h.pushLayers(repoTag, ls)
}

func fixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkReported indexes m and checks that it reports want (see reported).
func (h *harness) checkReported(t *testing.T, m *report.Manifest, want []string) {
	t.Helper()
	if got := reported(h.indexAndWait(m), m); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// reported lists a report's packages as "name version purl db layer#",
// sorted; layer# is the index in m of the layer that introduced it.
func reported(r *report.Report, m *report.Manifest) []string {
	var out []string
	for id, p := range r.Packages {
		for _, e := range r.Environments[id] {
			layer := -1
			for i, l := range m.Layers {
				if l.Hash == e.IntroducedIn {
					layer = i
				}
			}
			out = append(out, strings.Join([]string{p.Name, p.Version, p.PURL, e.PackageDB, strconv.Itoa(layer)}, " "))
		}
	}
	sort.Strings(out)
	return out
}

// index indexes m through the API and waits for its report, which must be
// IndexFinished.
func (h *harness) indexAndWait(m *report.Manifest) *report.Report {
	h.t.Helper()
	r := h.indexWait(h.t, m)
	if r.State != report.StateIndexFinished || !r.Success {
		h.t.Fatalf("state %s: %s", r.State, r.Err)
	}
	h.checkClairAnswer(m.Hash)
	return r
}

// TestLanguageEcosystems indexes one image per language ecosystem through
// the real pipeline (registry -> API -> JetStream -> worker -> Postgres),
// built from the corpus's real files (aquasecurity/trivy, anchore/syft,
// quay/claircore, google/osv-scalibr test data; see
// testdata/fixtures/SOURCES.md), and compares the stored report with what
// the files say.
func TestLanguageEcosystems(t *testing.T) {
	runEcosystems(t,
		ecosystemCheck{"python", checkPython},
		ecosystemCheck{"java", checkJava},
		ecosystemCheck{"gobinary", checkGoBinary},
		ecosystemCheck{"npm", checkNPM},
		ecosystemCheck{"ruby", checkRuby},
		ecosystemCheck{"bad files do not fail the image", checkBadFilesDoNotFailImage},
	)
}

// ecosystemCheck is a subtest of the ecosystem tests: it pushes an image to
// the shared harness, indexes it and checks its report.
type ecosystemCheck struct {
	name  string
	check func(t *testing.T, h *harness)
}

// runEcosystems runs each check as a subtest on one harness of two workers.
func runEcosystems(t *testing.T, checks ...ecosystemCheck) {
	t.Helper()
	h := newHarness(t)
	h.start(h.config(2, true))
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.check(t, h) })
	}
}

// checkPython indexes two layers adding to the same site-packages.
func checkPython(t *testing.T, h *harness) {
	// Two layers adding to the same site-packages: each
	// distribution's metadata file is its own package database, so
	// the upper layer does not hide the lower one's packages.
	sp := "usr/lib/python3.10/site-packages/"
	m := h.push("python:1",
		map[string][]byte{
			sp + "Flask-2.0.0.dist-info/METADATA": fixture(t, "python/trivy_Flask-2.0.0.dist-info_METADATA"),
			sp + "click-8.0.0.dist-info/METADATA": fixture(t, "python/trivy_click-8.0.0.dist-info_METADATA"),
			sp + "Flask-2.0.0.dist-info/RECORD":   []byte("flask/__init__.py,,\n"),
		},
		map[string][]byte{
			sp + "typing_extensions-4.4.0.dist-info/METADATA":                   fixture(t, "python/trivy_typing_extensions-4.4.0.dist-info_METADATA"),
			"usr/lib/python3/dist-packages/setuptools-51.3.3.egg-info/PKG-INFO": fixture(t, "python/trivy_setuptools-51.3.3.egg-info_PKG-INFO"),
		},
	)
	want := []string{
		"click 8.0.0 pkg:pypi/click@8.0.0 " + sp + "click-8.0.0.dist-info/METADATA 0",
		"flask 2.0.0 pkg:pypi/flask@2.0.0 " + sp + "Flask-2.0.0.dist-info/METADATA 0", // lower case, as claircore
		"setuptools 51.3.3 pkg:pypi/setuptools@51.3.3 usr/lib/python3/dist-packages/setuptools-51.3.3.egg-info/PKG-INFO 1",
		"typing_extensions 4.4.0 pkg:pypi/typing-extensions@4.4.0 " + sp + "typing_extensions-4.4.0.dist-info/METADATA 1",
	}
	h.checkReported(t, m, want)
}

// checkJava indexes Java archives.
func checkJava(t *testing.T, h *harness) {
	m := h.push("java:1", map[string][]byte{
		"usr/local/tomcat/webapps/gradle.war":        fixture(t, "java/trivy_gradle.war"),
		"app/lib/jackson-annotations-2.15.0-rc2.jar": fixture(t, "java/trivy_jackson-annotations-2.15.0-rc2.jar"),
		"app/nested.jar": fixture(t, "java/trivy_nested.jar"),
	})
	war, jar, nested := "usr/local/tomcat/webapps/gradle.war 0", "app/lib/jackson-annotations-2.15.0-rc2.jar 0", "app/nested.jar 0"
	want := []string{
		"com.fasterxml.jackson.core:jackson-annotations 2.15.0-rc2 pkg:maven/com.fasterxml.jackson.core/jackson-annotations@2.15.0-rc2 " + jar,
		"commons-dbcp:commons-dbcp 1.4 pkg:maven/commons-dbcp/commons-dbcp@1.4 " + war,
		"commons-pool:commons-pool 1.6 pkg:maven/commons-pool/commons-pool@1.6 " + war,
		"log4j:log4j 1.2.17 pkg:maven/log4j/log4j@1.2.17 " + war,
		"org.apache.commons:commons-compress 1.19 pkg:maven/org.apache.commons/commons-compress@1.19 " + war,
		"test:nested 0.0.1 pkg:maven/test/nested@0.0.1 " + nested,
		"test:nested2 0.0.2 pkg:maven/test/nested2@0.0.2 " + nested,
		"test:nested3 0.0.3 pkg:maven/test/nested3@0.0.3 " + nested,
	}
	h.checkReported(t, m, want)
}

// checkGoBinary indexes Go executables.
func checkGoBinary(t *testing.T, h *harness) {
	// Go binaries anywhere, whatever their mode (a copy without an
	// executable bit is reported, as a 0644 c-shared library is); a
	// C program next to them is not.
	cprog, err := os.ReadFile("/usr/bin/true")
	if err != nil {
		t.Fatalf("this test needs a non-Go ELF executable, /usr/bin/true: %v", err)
	}
	m := h.pushTars("gobin:1", []tarFile{
		{"usr/local/bin/test", 0o755, fixture(t, "gobin/trivy_main-version-via-ldflags.elf")},
		{"opt/app/binary_with_module_replacement", 0o755, fixture(t, "gobin/scalibr_binary_with_module_replacement-linux-amd64")},
		{"usr/bin/true", 0o755, cprog},
		{"usr/share/doc/test.elf", 0o644, fixture(t, "gobin/trivy_test.elf")},
	})
	bin, app, doc := "usr/local/bin/test 0", "opt/app/binary_with_module_replacement 0", "usr/share/doc/test.elf 0"
	want := []string{
		"binary_with_module_replacement (devel) pkg:golang/binary_with_module_replacement " + app,
		"github.com/aquasecurity/go-pep440-version v0.0.0-20210121094942-22b2f8951d46 pkg:golang/github.com/aquasecurity/go-pep440-version@v0.0.0-20210121094942-22b2f8951d46 " + doc,
		"github.com/aquasecurity/go-version v0.0.0-20210121072130-637058cfe492 pkg:golang/github.com/aquasecurity/go-version@v0.0.0-20210121072130-637058cfe492 " + doc,
		"github.com/aquasecurity/test (devel) pkg:golang/github.com/aquasecurity/test " + doc,
		// Built from a modified git checkout: its vcs settings.
		"github.com/aquasecurity/test v1.0.0 pkg:golang/github.com/aquasecurity/test@v1.0.0?vcs=git&vcs.modified=true&vcs.revision=9640d75c13845419f5797e2e3ac3475f8d801d79&vcs.time=2024-04-26T06:00:20Z " + bin,
		"github.com/golang/xerrors v0.0.0-20220907171357-04be3eba64a2 pkg:golang/github.com/golang/xerrors@v0.0.0-20220907171357-04be3eba64a2 " + app,
		"golang.org/x/xerrors v0.0.0-20200804184101-5ec99f83aff1 pkg:golang/golang.org/x/xerrors@v0.0.0-20200804184101-5ec99f83aff1 " + doc,
		"stdlib 1.15.2 pkg:golang/stdlib@1.15.2 " + doc,
		"stdlib 1.22.0 pkg:golang/stdlib@1.22.0 " + app, // as claircore writes it
		"stdlib 1.22.1 pkg:golang/stdlib@1.22.1 " + bin,
	}
	h.checkReported(t, m, want)
}

// checkNPM indexes npm package manifests.
func checkNPM(t *testing.T, h *harness) {
	nm := "app/node_modules/"
	m := h.push("npm:1", map[string][]byte{
		"app/package.json":                             []byte(`{"name":"my-app","private":true,"dependencies":{"express":"^4"}}`),
		nm + "express/package.json":                    fixture(t, "npm/trivy_happy_nm-express_package.json"),
		nm + "express/node_modules/debug/package.json": fixture(t, "npm/trivy_happy_nm-express_nm-debug_package.json"),
		nm + "@babel/parser/package.json":              fixture(t, "npm/trivy_happy_nm-babel_parser_package.json"),
		nm + "@babel/parser/test/package.json":         []byte(`{"name":"fixture","version":"0.0.0"}`),
	})
	want := []string{
		"@babel/parser 7.23.6 pkg:npm/%40babel/parser@7.23.6 " + nm + "@babel/parser/package.json 0",
		"debug 2.6.9 pkg:npm/debug@2.6.9 " + nm + "express/node_modules/debug/package.json 0",
		"express 4.16.4 pkg:npm/express@4.16.4 " + nm + "express/package.json 0",
	}
	h.checkReported(t, m, want)
}

// checkRuby indexes installed gemspecs.
func checkRuby(t *testing.T, h *harness) {
	specs := "usr/local/bundle/specifications/"
	m := h.push("ruby:1", map[string][]byte{
		specs + "rake-13.0.3.gemspec":                                          fixture(t, "ruby/trivy_normal00.gemspec"),
		specs + "test-unit-3.3.7.gemspec":                                      fixture(t, "ruby/trivy_multiple_licenses.gemspec"),
		"usr/lib/ruby/gems/3.1.0/specifications/default/bundler-2.1.4.gemspec": fixture(t, "ruby/syft_bundler.gemspec"),
	})
	want := []string{
		"bundler 2.1.4 pkg:gem/bundler@2.1.4 usr/lib/ruby/gems/3.1.0/specifications/default/bundler-2.1.4.gemspec 0",
		"rake 13.0.3 pkg:gem/rake@13.0.3 " + specs + "rake-13.0.3.gemspec 0",
		"test-unit 3.3.7 pkg:gem/test-unit@3.3.7 " + specs + "test-unit-3.3.7.gemspec 0",
	}
	h.checkReported(t, m, want)
}

// checkBadFilesDoNotFailImage indexes an image with malformed package files:
// each is skipped, and the good files are reported.
func checkBadFilesDoNotFailImage(t *testing.T, h *harness) {
	// A truncated jar, a METADATA of 48 MiB whose headers never
	// end, an invalid package.json, a gemspec in invalid UTF-8 and
	// an ELF that is not Go: each is skipped (with a warning in the
	// worker's log); the good files are reported.
	jar := fixture(t, "java/trivy_jackson-annotations-2.15.0-rc2.jar")
	huge := append([]byte("Metadata-Version: 2.1\nSummary: "), bytes.Repeat([]byte("x"), 48<<20)...)
	m := h.pushTars("bad:1", []tarFile{
		{"app/broken-1.0.jar", 0o644, jar[:len(jar)/2]},
		{"app/jackson-annotations-2.15.0-rc2.jar", 0o644, jar},
		{"usr/lib/python3/site-packages/huge-1.0.dist-info/METADATA", 0o644, huge},
		{"app/node_modules/bad/package.json", 0o644, []byte(`{"name": "bad", "version": `)},
		{"usr/local/bundle/specifications/bad-1.gemspec", 0o644, []byte("Gem::Specification.new do |s|\n s.name = \"caf\xe9\"\n s.version = \"1\"\nend\n")},
		{"usr/bin/elf", 0o755, append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 5000)...)},
	})
	want := []string{
		"com.fasterxml.jackson.core:jackson-annotations 2.15.0-rc2 pkg:maven/com.fasterxml.jackson.core/jackson-annotations@2.15.0-rc2 app/jackson-annotations-2.15.0-rc2.jar 0",
	}
	h.checkReported(t, m, want)
}
