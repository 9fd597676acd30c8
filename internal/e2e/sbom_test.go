package e2e_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/sbom"
	"github.com/stevedore-dev/stevedore/internal/testing/closedport"
	"github.com/stevedore-dev/stevedore/internal/testing/sbomcheck"
	"github.com/stevedore-dev/stevedore/report"
)

// TestSBOM indexes images built from the corpus's real files through the
// pipeline and exports their reports through the API,
// GET /api/v1/reports/{digest}/sbom, in both formats: every answer
// validates against the official schemas, decodes with the formats' own Go
// libraries with the package set of the native report (purls, versions,
// sources, layers, paths), and the CycloneDX ones pass
// @cyclonedx/cyclonedx-library's validator. Two exports are the same bytes;
// a partial report's SBOM says it is partial.
func TestSBOM(t *testing.T) {
	h := newHarness(t)
	// A repository-to-CPE source nothing listens on: RHEL images end
	// IndexPartial; the others are not affected.
	addr := closedport.Addr(t)
	h.start(h.partialConfig(2, true, "http://"+addr+"/repository-to-cpe.json"))
	check := sbomcheck.New(t)
	dir := t.TempDir()
	var cdxFiles []string

	im := pushSBOMImages(t, h)
	nm := "app/node_modules/"
	for _, tc := range []sbomCase{
		{"ubuntu-node", im.ubuntu, false, []sbomWhere{
			{"pkg:deb/ubuntu/fdisk@", "var/lib/dpkg/status", 0, "util-linux"},
			{"pkg:npm/cowsay@1.4.0", nm + "cowsay/package.json", 1, ""},
			{"pkg:pypi/flask@2.0.0", "usr/local/lib/python3.11/dist-packages/Flask-2.0.0.dist-info/METADATA", 1, ""},
		}},
		{"alpine", im.alpine, false, []sbomWhere{{"pkg:apk/alpine/musl@", "lib/apk/db/installed", 0, "musl"}}},
		{"rhel-partial", im.rhel, true, nil},
		{"wolfi", im.wolfi, false, []sbomWhere{{"pkg:apk/wolfi/musl@1.1.22-r3?arch=x86_64&distro=wolfi-20220914", "lib/apk/db/installed", 0, "musl"}}},
		{"runtimes", im.runtimes, false, []sbomWhere{
			{"pkg:generic/openjdk@25.0.3?implementor=Eclipse%20Adoptium", "opt/java/openjdk/bin/java", 1, ""},
			{"pkg:generic/go@1.26.8", "usr/local/go/bin/go", 1, ""},
			{"pkg:generic/python@3.7.4", "usr/local/bin/python3.7", 1, ""},
			{"pkg:generic/node@19.2.0", "usr/local/bin/node", 1, ""},
			{"pkg:maven/commons-logging/commons-logging@1.2", "usr/share/java/commons-logging-1.2.jar", 1, ""},
			{"pkg:golang/github.com/aquasecurity/test@v1.0.0?vcs=git&vcs.modified=true&vcs.revision=9640d75c13845419f5797e2e3ac3475f8d801d79&vcs.time=2024-04-26T06:00:20Z", "usr/local/bin/test", 1, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb := checkSBOMCase(t, h, check, tc)
			f := filepath.Join(dir, tc.name+".cdx.json")
			if err := os.WriteFile(f, cb, 0o644); err != nil {
				t.Fatal(err)
			}
			cdxFiles = append(cdxFiles, f)
		})
	}
	sbomcheck.NodeValidateCycloneDX(t, cdxFiles...)

	t.Run("errors", func(t *testing.T) { checkSBOMErrors(t, h, im.ubuntu) })
}

// sbomImages are the images TestSBOM exports.
type sbomImages struct {
	ubuntu, alpine, rhel, wolfi, runtimes *report.Manifest
}

// pushSBOMImages pushes the images TestSBOM exports, built from the
// corpus's real files.
func pushSBOMImages(t *testing.T, h *harness) sbomImages {
	nm := "app/node_modules/"
	var im sbomImages
	im.ubuntu = h.push("sbom/ubuntu-node:1",
		map[string][]byte{
			"etc/os-release":      fixture(t, "osrelease/claircore_ubuntu-18.04_os-release"),
			"var/lib/dpkg/status": fixture(t, "dpkg/trivy_valid.status"),
		},
		map[string][]byte{
			nm + "cowsay/package.json":                                              fixture(t, "npm/syft_cowsay_package.json"),
			nm + "@actions/core/package.json":                                       fixture(t, "npm/syft_actions-core_package.json"),
			"usr/local/lib/python3.11/dist-packages/Flask-2.0.0.dist-info/METADATA": fixture(t, "python/trivy_Flask-2.0.0.dist-info_METADATA"),
		})
	im.alpine = h.push("sbom/alpine:3.10", map[string][]byte{
		"etc/os-release":       fixture(t, "osrelease/trivy_alpine-310_os-release"),
		"lib/apk/db/installed": fixture(t, "apk/trivy_alpine-310_installed"),
	})
	im.rhel = h.push("sbom/rhel8:1", rhelFiles(t, "8"))
	im.wolfi = h.push("sbom/wolfi:1", map[string][]byte{
		"etc/os-release":       fixture(t, "osrelease/syft_wolfi_os-release"),
		"lib/apk/db/installed": fixture(t, "apk/trivy_alpine-310_installed"),
	})
	// Language runtimes copied in, and Debian's commons-logging (a jar
	// without pom.properties, its group from Debian's Maven repository).
	rtBase, rtCopied := runtimeImage(t)
	const clPOM = "usr/share/maven-repo/commons-logging/commons-logging/1.2/commons-logging-1.2.pom"
	rtCopied = append(rtCopied,
		tarFile{"usr/share/java/commons-logging-1.2.jar", 0o644, testdataOf(t, "scanner/java", "debian/usr/share/java/commons-logging-1.2.jar")},
		tarFile{clPOM, 0o644, testdataOf(t, "scanner/java", "debian/"+clPOM)},
		// A Go binary built from a git checkout: vcs qualifiers.
		tarFile{"usr/local/bin/test", 0o755, fixture(t, "gobin/trivy_main-version-via-ldflags.elf")})
	im.runtimes = h.pushTars("sbom/runtimes:1", rtBase, rtCopied)
	return im
}

// sbomWhere is a package the SBOM must place: its purl's start, the file
// it was read from, the layer (index in the manifest) and its source.
type sbomWhere struct {
	purl, path string
	layer      int
	source     string
}

// sbomCase is an image TestSBOM indexes and exports.
type sbomCase struct {
	name    string
	m       *report.Manifest
	partial bool
	want    []sbomWhere
}

// checkSBOMCase indexes tc's image, exports its report in both formats and
// checks them against the native report; it returns the CycloneDX export.
func checkSBOMCase(t *testing.T, h *harness, check *sbomcheck.Checker, tc sbomCase) []byte {
	if _, err := h.client.IndexManifest(t.Context(), tc.m); err != nil {
		t.Fatal(err)
	}
	if r := h.wait(tc.m.Hash); r.State == report.StateIndexError || (r.State == report.StateIndexPartial) != tc.partial {
		t.Fatalf("state %s (partial %v), want partial %v", r.State, r.Partial, tc.partial)
	}
	rep := nativeReport(t, h, tc.m.Hash)
	path := "/api/v1/reports/" + string(tc.m.Hash) + "/sbom?format="
	doc := check.SPDX(t, exportSBOM(t, h, path, sbom.FormatSPDXJSON))
	sbomcheck.CheckSPDX(t, rep, doc)
	cb := exportSBOM(t, h, path, sbom.FormatCycloneDXJSON)
	bom := check.CycloneDX(t, cb)
	sbomcheck.CheckCycloneDX(t, rep, bom)
	checkSBOMLayers(t, tc.m, bom)
	checkSBOMPlacements(t, tc.m, bom, tc.want)
	if tc.partial && !strings.Contains(doc.DocumentComment, enrich.RepositoryCPE) {
		t.Errorf("the partial SBOM's comment does not name %s: %q", enrich.RepositoryCPE, doc.DocumentComment)
	}
	return cb
}

// nativeReport gets the native report of d, which must list packages, some
// with a purl.
func nativeReport(t *testing.T, h *harness, d report.Digest) *report.Report {
	t.Helper()
	a := h.do("GET", "/api/v1/reports/"+string(d), nil, nil)
	if a.status != http.StatusOK {
		t.Fatalf("native report: %d %s", a.status, a.body)
	}
	rep := new(report.Report)
	if err := json.Unmarshal(a.body, rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Packages) == 0 {
		t.Fatal("the report has no packages")
	}
	withPURL := 0
	for _, p := range rep.Packages {
		if p.PURL != "" {
			withPURL++
		}
	}
	if withPURL == 0 {
		t.Fatal("no package of the native report has a purl")
	}
	return rep
}

// exportSBOM gets path+format, checks its media type and that a second
// export is the same bytes whose ETag answers 304, and returns the export.
func exportSBOM(t *testing.T, h *harness, path, format string) []byte {
	t.Helper()
	a := h.do("GET", path+format, nil, nil)
	want, _ := sbom.MediaType(format)
	if a.status != http.StatusOK || a.header.Get("Content-Type") != want {
		t.Fatalf("%s: %d %s %s", format, a.status, a.header.Get("Content-Type"), a.body)
	}
	// Deterministic: a second export is the same bytes,
	// and its ETag answers 304.
	b := h.do("GET", path+format, nil, nil)
	if !bytes.Equal(a.body, b.body) {
		t.Fatalf("%s: two exports differ", format)
	}
	if c := h.do("GET", path+format, http.Header{"If-None-Match": {a.header.Get("ETag")}}, nil); c.status != http.StatusNotModified {
		t.Errorf("%s: If-None-Match with the ETag: %d", format, c.status)
	}
	return a.body
}

// checkSBOMLayers checks that the layer of every package is one of m's.
func checkSBOMLayers(t *testing.T, m *report.Manifest, bom *cdx.BOM) {
	t.Helper()
	layers := map[string]bool{}
	for _, l := range m.Layers {
		layers[string(l.Hash)] = true
	}
	for _, c := range *bom.Components {
		if c.Properties == nil {
			continue
		}
		for _, p := range *c.Properties {
			if strings.HasSuffix(p.Name, ":layer") && !layers[p.Value] {
				t.Errorf("%s: layer %s is not one of the image's", c.Name, p.Value)
			}
		}
	}
}

// checkSBOMPlacements checks that the first component of each wanted purl
// has the wanted path, layer and source.
func checkSBOMPlacements(t *testing.T, m *report.Manifest, bom *cdx.BOM, want []sbomWhere) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, c := range *bom.Components {
			if !strings.HasPrefix(c.PackageURL, w.purl) || c.Properties == nil {
				continue
			}
			props := map[string]string{}
			for _, p := range *c.Properties {
				props[p.Name] = p.Value
			}
			src := ""
			if ref := props["stevedore:package:source"]; ref != "" {
				for _, s := range *bom.Components {
					if s.BOMRef == ref {
						src = s.Name
					}
				}
			}
			found = props["stevedore:location:0:path"] == w.path &&
				props["stevedore:location:0:layer"] == string(m.Layers[w.layer].Hash) && src == w.source
			if !found {
				t.Errorf("%s: properties %v, source %q; want %+v", c.PackageURL, props, src, w)
			}
			break
		}
		if !found {
			t.Errorf("no component places %+v", w)
		}
	}
}

// checkSBOMErrors checks the answers to bad SBOM requests.
func checkSBOMErrors(t *testing.T, h *harness, ubuntu *report.Manifest) {
	base := "/api/v1/reports/" + string(ubuntu.Hash) + "/sbom"
	for _, tc := range []struct {
		path string
		want int
		code string
	}{
		{base, http.StatusBadRequest, "bad-request"},
		{base + "?format=spdx-tag-value", http.StatusBadRequest, "bad-request"},
		{base + "?format=spdx-json&format=cyclonedx-json", http.StatusBadRequest, "bad-request"},
		{"/api/v1/reports/sha256:nothex/sbom?format=spdx-json", http.StatusBadRequest, "bad-request"},
		{"/api/v1/reports/sha256:" + strings.Repeat("0", 64) + "/sbom?format=spdx-json", http.StatusNotFound, "not-found"},
	} {
		a := h.do("GET", tc.path, nil, nil)
		var e struct{ Code, Message string }
		if err := json.Unmarshal(a.body, &e); err != nil || a.status != tc.want || e.Code != tc.code || e.Message == "" {
			t.Errorf("GET %s: %d %s, want %d %s", tc.path, a.status, a.body, tc.want, tc.code)
		}
	}
}
