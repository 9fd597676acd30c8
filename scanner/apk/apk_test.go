package apk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "apk", Version: "2", Kind: scanner.KindPackage}, map[string]bool{
		"lib/apk/db/installed":      true,
		"lib/apk/db/installed.new":  false,
		"lib/apk/db/scripts.tar":    false,
		"usr/lib/apk/db/installed":  false,
		"/lib/apk/db/installed":     false,
		"lib/apk/db/installed/":     false,
		"var/lib/apk/db/installed":  false,
		"lib/apk/db/installed.lock": false,
	})
}

// TestFixtures checks package counts (the P: line counts in
// testdata/fixtures/SOURCES.md) and spot values on the corpus's apk databases:
// google/osv-scalibr (scalibr_*), anchore/syft (syft_*) and
// aquasecurity/trivy (trivy_*) test data.
func TestFixtures(t *testing.T) {
	type spot struct{ name, version, arch, src string }
	tests := []struct {
		file  string
		count int
		spots []spot
	}{
		{"apk/scalibr_installed", 15, []spot{
			{"musl", "1.2.4-r0", "x86_64", "musl"},
			{"alpine-baselayout-data", "3.4.3-r1", "x86_64", "alpine-baselayout"},
			{"scanelf", "1.3.7-r1", "x86_64", "pax-utils"},
			{"libc-utils", "0.7.2-r5", "x86_64", "libc-dev"},
		}},
		{"apk/syft_extra-file-attributes", 1, []spot{{"openjdk8-jre", "8.212.04-r0", "x86_64", "openjdk8"}}},
		{"apk/syft_multiple-1_installed", 4, []spot{
			{"bash", "5.2.21-r0", "x86_64", "bash"},
			{"musl", "1.2.4_git20230717-r4", "x86_64", "musl"},
		}},
		{"apk/syft_multiple-2_installed", 14, []spot{
			{"busybox", "1.35.0-r17", "x86_64", "busybox"},
			{"libssl1.1", "1.1.1q-r0", "x86_64", "openssl"},
		}},
		{"apk/trivy_alpine-310_installed", 14, []spot{{"musl", "1.1.22-r3", "x86_64", "musl"}}},
		{"apk/trivy_alpine-311_installed", 14, []spot{
			{"ca-certificates-cacert", "20191127-r1", "x86_64", "ca-certificates"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			res, err := scannertest.Scan(Scanner{}, scannertest.FromDisk(t, "lib/apk/db/installed", fixtures.Path(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != tt.count {
				t.Errorf("%d packages, want %d", len(res.Packages), tt.count)
			}
			for _, p := range res.Packages {
				if p.Kind != report.KindBinary || p.PackageDB != "lib/apk/db/installed" || p.Source == nil ||
					p.Source.Kind != report.KindSource || p.Source.Version != p.Version ||
					p.PURL != "pkg:apk/alpine/"+p.Name+"@"+p.Version+"?arch="+p.Arch {
					t.Errorf("malformed package %+v (source %+v)", p, p.Source)
				}
			}
			for _, s := range tt.spots {
				p := scannertest.Find(res.Packages, s.name)
				if p == nil {
					t.Errorf("%s not found", s.name)
					continue
				}
				if got := (spot{p.Name, p.Version, p.Arch, p.Source.Name}); got != s {
					t.Errorf("got %+v, want %+v", got, s)
				}
			}
		})
	}
}

// TestTrivyGolden compares the scanner with trivy's expected package list
// for the alpine:3.10 image (aquasecurity/trivy
// pkg/fanal/test/integration/testdata/goldens/packages/alpine-310.json.golden)
// on the installed database extracted from that image's tarball.
//
// The golden is not quite in step with the tarball: for four packages it
// gives older versions than the image's database holds (checked by
// extracting lib/apk/db/installed from layers/trivy_alpine-310.tar.gz). Those
// four are compared by name, arch and source only, and their versions
// against the database.
func TestTrivyGolden(t *testing.T) {
	raw := scannertest.ReadFixture(t, "reports/trivy_alpine-310.json.golden")
	var golden []struct {
		Name, Version, Arch, SrcName, SrcVersion string
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	stale := map[string]string{ // name: version in the image's database
		"busybox":      "1.30.1-r3",
		"ssl_client":   "1.30.1-r3",
		"libcrypto1.1": "1.1.1d-r2",
		"libssl1.1":    "1.1.1d-r2",
	}
	res, err := scannertest.Scan(Scanner{}, scannertest.FromDisk(t, "lib/apk/db/installed", fixtures.Path(t, "apk/trivy_alpine-310_installed")))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != len(golden) || len(golden) != 14 {
		t.Fatalf("%d packages, golden has %d (want 14)", len(res.Packages), len(golden))
	}
	for _, g := range golden {
		p := scannertest.Find(res.Packages, g.Name)
		if p == nil {
			t.Errorf("%s missing", g.Name)
			continue
		}
		wantV, wantSrcV := g.Version, g.SrcVersion
		if v, ok := stale[g.Name]; ok {
			wantV, wantSrcV = v, v
		}
		if p.Version != wantV || p.Arch != g.Arch || p.Source.Name != g.SrcName || p.Source.Version != wantSrcV {
			t.Errorf("%s: got %s %s %s %s, want %s %s %s %s", g.Name, p.Version, p.Arch, p.Source.Name, p.Source.Version,
				wantV, g.Arch, g.SrcName, wantSrcV)
		}
	}
}

// TestInvalidEntry: trivy's apk fixture (aquasecurity/trivy
// pkg/fanal/analyzer/pkg/apk/testdata/apk) has an entry with P: and no V:.
// apk itself refuses to load such a database, and so does this scanner: the
// error names the file, the line and the package. Trivy skips the entry;
// with it removed the other 15 packages parse.
func TestInvalidEntry(t *testing.T) {
	data := scannertest.ReadFixture(t, "apk/trivy_apk")
	_, err := scannertest.Scan(Scanner{}, scannertest.File("lib/apk/db/installed", data))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"apk: parsing lib/apk/db/installed", "entry at line 23", `"invalidPackageWithoutAVersion"`, "no V:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	fixed := bytes.Replace(data, []byte("\nP:invalidPackageWithoutAVersion\n"), nil, 1)
	if len(fixed) == len(data) {
		t.Fatal("fixture changed")
	}
	res, err := scannertest.Scan(Scanner{}, scannertest.File("lib/apk/db/installed", fixed))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range res.Packages {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	want := []string{"ada-libs", "alpine-baselayout", "alpine-keys", "apk-tools", "busybox", "libc-utils", "libcrypto1.0",
		"libssl1.0", "musl", "musl-utils", "pkgconf", "scanelf", "sqlite-libs", "test", "zlib"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", names, want)
	}
}

func TestParseForms(t *testing.T) {
	tests := []struct {
		name, data string
		want       []Entry
	}{
		{"empty", "", nil},
		{"no final newline", "P:a\nV:1-r0", []Entry{{Name: "a", Version: "1-r0", Line: 1}}},
		{"CRLF and runs of blank lines", "\r\n\r\nP:a\r\nV:1-r0\r\nA:x86_64\r\n\r\n\r\n \r\nP:b\r\nV:2-r0\r\no:bb\r\n",
			[]Entry{{Name: "a", Version: "1-r0", Arch: "x86_64", Line: 3}, {Name: "b", Version: "2-r0", Origin: "bb", Line: 9}}},
		{"other fields ignored", "C:Q1x=\nP:a\nV:1\nF:usr\nR:file name with spaces\na:0:0:755\nZ:Q1=\n",
			[]Entry{{Name: "a", Version: "1", Line: 1}}},
		{"no origin", "P:a\nV:1\n", []Entry{{Name: "a", Version: "1", Line: 1}}},
		{"owned files", "P:a\nV:1\nF:usr\nF:usr/bin\nR:python3.11\nR:notes\nF:usr/share/doc\nR:README\nF:bin\nR:busybox\n\nP:b\nV:2\nR:bin/x\n",
			[]Entry{{Name: "a", Version: "1", Line: 1, Owned: []string{"usr/bin/python3.11", "usr/bin/notes", "bin/busybox", "usr/bin/busybox"}}, {Name: "b", Version: "2", Line: 12, Owned: []string{"bin/x", "usr/bin/x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(context.Background(), strings.NewReader(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], tt.want[i]) {
					t.Errorf("entry %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
	// No o: line: the package is its own source.
	res, err := scannertest.Scan(Scanner{}, scannertest.File("lib/apk/db/installed", []byte("P:a\nV:1\n")))
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Packages[0].Source; s.Name != "a" || s.Version != "1" {
		t.Errorf("source = %+v", s)
	}
	if p := res.Packages[0].PURL; p != "pkg:apk/alpine/a@1" {
		t.Errorf("PURL without arch = %q", p)
	}
}

// TestBadInput checks that corrupt databases are errors naming the file and
// the line, never panics. The truncation is cut from osv-scalibr's Alpine
// 3.18 database (google/osv-scalibr).
func TestBadInput(t *testing.T) {
	valid := scannertest.ReadFixture(t, "apk/scalibr_installed")
	i := bytes.Index(valid, []byte("\nV:3.4.3-r1\n")) // alpine-baselayout
	truncated := valid[:i+1]
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated before V:", truncated, `entry at line 1 (package "alpine-baselayout"): no V:`},
		{"entry without P:", []byte("P:a\nV:1\n\nV:2\nA:x86_64\n"), "entry at line 4: no P:"},
		{"binary junk", []byte("\x7fELF\x02\x01\x01\x00\x00"), "line 1: NUL byte"},
		{"random bytes", []byte("\xde\xad\xbe\xef\n"), "line 1: not a field"},
		{"not a field", []byte("P:a\nV:1\nthis is not apk\n"), "line 3: not a field"},
		{"digit field", []byte("P:a\n1:x\n"), "line 2: not a field"},
		{"one letter", []byte("P:a\nV:1\nx\n"), "line 3: not a field"},
		{"repeated P", []byte("P:a\nP:b\nV:1\n"), `line 2: entry at line 1 (package "a"): repeated P:`},
		{"repeated V", []byte("P:a\nV:1\nV:2\n"), "repeated V:"},
		{"empty name", []byte("P:\nV:1\n"), "P: value \"\" is empty"},
		{"blank in version", []byte("P:a\nV:1 2\n"), "holds blanks"},
		{"invalid UTF-8 name", []byte("P:a\xff\nV:1\n"), "P: value is not valid UTF-8"},
		{"control char in arch", []byte("P:a\nV:1\nA:x86\x1b64\n"), "holds blanks or control characters"},
		{"giant line", []byte("P:a\nV:1\nT:" + strings.Repeat("x", MaxLineLen) + "\n"), "line 3: longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scannertest.Scan(Scanner{}, scannertest.File("lib/apk/db/installed", tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "apk: parsing lib/apk/db/installed: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name the file and contain %q", err, tt.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	entry := []byte("P:a\nV:1\nT:" + strings.Repeat("x", 8000) + "\n\n")
	scannertest.CheckFailures(t, scannertest.Failures{Scanner: Scanner{}, Path: "lib/apk/db/installed", Limit: MaxFileSize, Valid: []byte("P:a\nV:1\n\n"), Filler: entry})

	// Cancellation is noticed while parsing a long file.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Parse(cctx, bytes.NewReader(bytes.Repeat([]byte("P:a\nV:1\n\n"), 10000))); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled during: err = %v", err)
	}
	res, err := scannertest.Scan(Scanner{})
	if err != nil || res == nil || len(res.Packages) != 0 {
		t.Errorf("no files: %+v, %v", res, err)
	}
}

// TestOwnedFiles: the corpus's alpine:3.10 database (aquasecurity/trivy)
// owns busybox (F:bin, R:busybox) and scanelf (usr/bin); its files outside
// bin directories are not recorded.
func TestOwnedFiles(t *testing.T) {
	b := scannertest.ReadFixture(t, "apk/trivy_alpine-310_installed")
	res, err := scannertest.Scan(Scanner{}, scannertest.File("lib/apk/db/installed", b))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bin/busybox", "usr/bin/busybox", "usr/bin/scanelf"} {
		if !slices.Contains(res.OwnedFiles, p) {
			t.Errorf("%s not owned: %q", p, res.OwnedFiles)
		}
	}
	if !slices.IsSorted(res.OwnedFiles) || slices.Contains(res.OwnedFiles, "etc/motd") {
		t.Errorf("owned files %q", res.OwnedFiles)
	}
}
