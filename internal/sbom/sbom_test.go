package sbom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/sbom"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/internal/testing/sbomcheck"
	"github.com/stevedore-dev/stevedore/report"
)

// fixtureReport reads one of claircore's index reports from the corpus.
func fixtureReport(t *testing.T, name string) *report.Report {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path(t, "reports/"+name))
	if err != nil {
		t.Fatal(err)
	}
	r := new(report.Report)
	if err := json.Unmarshal(raw, r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

const (
	layer1 = report.Digest("sha256:1111111111111111111111111111111111111111111111111111111111111111")
	layer2 = report.Digest("sha256:2222222222222222222222222222222222222222222222222222222222222222")
)

// stevedoreReport is a report as Stevedore writes them: purls, source
// packages, an OS and a language package, two layers; partial when asked.
func stevedoreReport(partial bool) *report.Report {
	r := report.NewReport("sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", report.StateIndexFinished)
	r.Success = true
	r.ScannerState = "scanners-v1"
	r.UpdatedAt = time.Date(2026, 11, 30, 12, 34, 56, 789, time.UTC)
	r.Distributions["1"] = &report.Distribution{ID: "1", DID: "debian", Name: "Debian GNU/Linux", Version: "12 (bookworm)",
		VersionCodeName: "bookworm", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", CPE: "cpe:2.3:o:debian:debian_linux:12:*:*:*:*:*:*:*"}
	src := &report.Package{ID: "3", Name: "glibc", Version: "2.36-9", Kind: report.KindSource}
	r.Packages["1"] = &report.Package{ID: "1", Name: "libc6", Version: "2.36-9", Kind: report.KindBinary, Arch: "amd64", Source: src,
		PURL: "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc"}
	r.Packages["2"] = &report.Package{ID: "2", Name: "express", Version: "4.18.2", Kind: report.KindBinary,
		Source: &report.Package{}, PURL: "pkg:npm/express@4.18.2"}
	r.Packages["4"] = &report.Package{ID: "4", Name: "libc-bin", Version: "2.36-9", Kind: report.KindBinary, Arch: "amd64", Source: src,
		PURL: "pkg:deb/debian/libc-bin@2.36-9?arch=amd64&distro=debian-12&upstream=glibc"}
	r.Environments["1"] = []*report.Environment{{PackageDB: "var/lib/dpkg/status", IntroducedIn: layer1, DistributionID: "1"}}
	r.Environments["4"] = []*report.Environment{{PackageDB: "var/lib/dpkg/status", IntroducedIn: layer1, DistributionID: "1"}}
	r.Environments["2"] = []*report.Environment{
		{PackageDB: "app/node_modules/express/package.json", IntroducedIn: layer2},
		{PackageDB: "opt/old/node_modules/express/package.json", IntroducedIn: layer1},
	}
	if partial {
		r.State = report.StateIndexPartial
		r.Partial = []report.PartialReason{{Scanner: "rhel-repos", Reason: "repository-to-CPE mapping not loaded yet"}}
		next := r.UpdatedAt.Add(time.Hour)
		r.NextRetry = &next
	}
	return r
}

type testCase struct {
	name string
	rep  *report.Report
	opts sbom.Options
}

func cases(t *testing.T) []testCase {
	return []testCase{
		{"stevedore", stevedoreReport(false), sbom.Options{Name: "registry.example/app:1", ToolVersion: "test"}},
		{"stevedore-partial", stevedoreReport(true), sbom.Options{}},
		{"claircore-debian-10", fixtureReport(t, "claircore_docker.io-library-debian-10.index.json"), sbom.Options{}},
		{"claircore-buster-jackson", fixtureReport(t, "claircore_indexreport-buster-jackson-databind.json"), sbom.Options{}},
		{"claircore-rhacs-rhel8", fixtureReport(t, "claircore_rhacs-main-rhel8.index.json"), sbom.Options{}},
		{"claircore-clair-rhel8", fixtureReport(t, "claircore_clair-rhel8-v3.5.5-4-indexreport.json"), sbom.Options{}},
	}
}

func encode(t *testing.T, rep *report.Report, format string, opts sbom.Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := sbom.Encode(context.Background(), &b, rep, format, opts); err != nil {
		t.Fatalf("Encode %s: %v", format, err)
	}
	return b.Bytes()
}

// TestEncode exports every test report in both formats and checks each
// output with the schemas, the libraries' decoders, and against the report
// (sbomcheck.CheckSPDX, CheckCycloneDX); then has the CycloneDX JavaScript library
// validate every CycloneDX output.
func TestEncode(t *testing.T) {
	c := sbomcheck.New(t)
	dir := t.TempDir()
	var cdxFiles []string
	for _, tc := range cases(t) {
		t.Run(tc.name, func(t *testing.T) {
			s := encode(t, tc.rep, sbom.FormatSPDXJSON, tc.opts)
			sbomcheck.CheckSPDX(t, tc.rep, c.SPDX(t, s))
			b := encode(t, tc.rep, sbom.FormatCycloneDXJSON, tc.opts)
			sbomcheck.CheckCycloneDX(t, tc.rep, c.CycloneDX(t, b))
			f := filepath.Join(dir, tc.name+".cdx.json")
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
			cdxFiles = append(cdxFiles, f)
		})
	}
	sbomcheck.NodeValidateCycloneDX(t, cdxFiles...)
}

// TestDeterministic checks that the same report, read again (its maps in
// another order), exports to the same bytes, and that the documents carry
// the report's time and ids derived from its digest and content.
func TestDeterministic(t *testing.T) {
	for _, tc := range cases(t) {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range sbom.Formats {
				first := encode(t, tc.rep, format, tc.opts)
				raw, err := json.Marshal(tc.rep)
				if err != nil {
					t.Fatal(err)
				}
				for range 5 {
					again := new(report.Report)
					if err := json.Unmarshal(raw, again); err != nil {
						t.Fatal(err)
					}
					if got := encode(t, again, format, tc.opts); !bytes.Equal(got, first) {
						t.Fatalf("%s: a second export differs:\n%s\n---\n%s", format, first, got)
					}
				}
			}
		})
	}
	// Content ids: a package keeps its id when another package is added.
	a, b := stevedoreReport(false), stevedoreReport(false)
	b.Packages["9"] = &report.Package{ID: "9", Name: "aaa", Version: "1", Kind: report.KindBinary, Source: &report.Package{}}
	b.Environments["9"] = []*report.Environment{{PackageDB: "var/lib/dpkg/status", IntroducedIn: layer2}}
	refs := func(r *report.Report) map[string]string {
		bom, err := sbom.CycloneDX(r, sbom.Options{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, c := range *bom.Components {
			m[c.Name+"@"+c.Version] = c.BOMRef
		}
		return m
	}
	ra, rb := refs(a), refs(b)
	for k, v := range ra {
		if rb[k] != v {
			t.Errorf("%s: bom-ref %s, %s after another package was added", k, v, rb[k])
		}
	}
	if len(rb) != len(ra)+1 {
		t.Errorf("%d components, want %d", len(rb), len(ra)+1)
	}
	// Fixed metadata.
	rep := stevedoreReport(false)
	bom, err := sbom.CycloneDX(rep, sbom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if bom.Metadata.Timestamp != "2026-11-30T12:34:56Z" {
		t.Errorf("timestamp %s, want the report's updated_at", bom.Metadata.Timestamp)
	}
	if !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
		t.Errorf("serial number %q", bom.SerialNumber)
	}
	doc, err := sbom.SPDX(rep, sbom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := sbom.NamespacePrefix + "sha256/" + rep.Hash.Hex(); doc.DocumentNamespace != want {
		t.Errorf("namespace %s, want %s", doc.DocumentNamespace, want)
	}
	if doc.CreationInfo.Created != "2026-11-30T12:34:56Z" {
		t.Errorf("created %s", doc.CreationInfo.Created)
	}
	other := stevedoreReport(false)
	other.Hash = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	bom2, err := sbom.CycloneDX(other, sbom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if bom2.SerialNumber == bom.SerialNumber {
		t.Errorf("two manifests have the serial number %s", bom.SerialNumber)
	}
}

func TestEncodeErrors(t *testing.T) {
	running := stevedoreReport(false)
	running.State = report.StateScanLayers
	failed := stevedoreReport(false)
	failed.State, failed.Err = report.StateIndexError, "fetch: 404"
	bad := stevedoreReport(false)
	bad.Hash = "sha256:xyz"
	for _, tc := range []struct {
		name, format string
		rep          *report.Report
		want         string
	}{
		{"unknown format", "spdx-tag-value", stevedoreReport(false), "unknown SBOM format"},
		{"empty format", "", stevedoreReport(false), "unknown SBOM format"},
		{"no report", sbom.FormatSPDXJSON, nil, "no report"},
		{"not finished", sbom.FormatCycloneDXJSON, running, "not finished"},
		{"index error", sbom.FormatSPDXJSON, failed, "index error"},
		{"bad digest", sbom.FormatCycloneDXJSON, bad, "invalid digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			err := sbom.Encode(context.Background(), &b, tc.rep, tc.format, sbom.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes on error", b.Len())
			}
		})
	}
	if _, err := sbom.MediaType("xml"); !errors.Is(err, sbom.ErrFormat) {
		t.Errorf("MediaType(xml): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sbom.Encode(ctx, new(bytes.Buffer), stevedoreReport(false), sbom.FormatSPDXJSON, sbom.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// BenchmarkEncode exports claircore's RHACS report (544 packages).
func BenchmarkEncode(b *testing.B) {
	raw, err := os.ReadFile(fixtures.Path(b, "reports/claircore_rhacs-main-rhel8.index.json"))
	if err != nil {
		b.Fatal(err)
	}
	rep := new(report.Report)
	if err := json.Unmarshal(raw, rep); err != nil {
		b.Fatal(err)
	}
	for _, format := range sbom.Formats {
		b.Run(format, func(b *testing.B) {
			var out bytes.Buffer
			for b.Loop() {
				out.Reset()
				if err := sbom.Encode(context.Background(), &out, rep, format, sbom.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len()), "bytes/doc")
		})
	}
}
