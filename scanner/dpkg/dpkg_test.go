package dpkg

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "dpkg", Version: "3", Kind: scanner.KindPackage}, map[string]bool{
		"var/lib/dpkg/status":                         true,
		"var/lib/dpkg/status.d/libsqlite3-0":          true,
		"var/lib/dpkg/status.d/base-files":            true,
		"var/lib/dpkg/status.d/libsqlite3-0.md5sums":  false,
		"var/lib/dpkg/status.d/":                      false,
		"var/lib/dpkg/status.d/sub/x":                 false,
		"var/lib/dpkg/status-old":                     false,
		"var/lib/dpkg/available":                      false,
		"var/lib/dpkg/statusx":                        false,
		"usr/var/lib/dpkg/status":                     false,
		"/var/lib/dpkg/status":                        false,
		"vcpkg/installed/vcpkg/status":                false,
		"var/lib/dpkg/info/python3-six.list":          true,
		"var/lib/dpkg/info/libc6:amd64.list":          true,
		"var/lib/dpkg/info/.list":                     false,
		"var/lib/dpkg/info/libc6:amd64.md5sums":       false,
		"var/lib/dpkg/info/sub/x.list":                false,
		"var/lib/dpkg/info/python3-six.list.dpkg-new": false,
	})
}

// TestFixtures checks counts and spot values on the corpus's dpkg
// databases. Sources: quay/claircore (claircore_*), anchore/syft (syft_*),
// aquasecurity/trivy (trivy_*), google/osv-scalibr (scalibr_*); counts from
// testdata/fixtures/SOURCES.md, where they are Package: lines, less the
// entries that are not installed or not packages, as noted.
func TestFixtures(t *testing.T) {
	type spot struct {
		name, version, arch, srcName, srcVersion string
	}
	tests := []struct {
		file, layerPath string
		count           int
		spots           []spot
	}{
		{"dpkg/claircore_debian-only.status", "var/lib/dpkg/status", 1, []spot{
			{"debian-archive-keyring", "2019.1", "all", "debian-archive-keyring", "2019.1"},
		}},
		{"dpkg/claircore_postgresql.status", "var/lib/dpkg/status", 3, []spot{
			// "Source: postgresql-common (200+deb10u5)": the source version differs.
			{"postgresql-client", "11+200+deb10u5", "all", "postgresql-common", "200+deb10u5"},
			{"postgresql-client-11", "11.22-0+deb10u2", "amd64", "postgresql-11", "11.22-0+deb10u2"},
		}},
		{"dpkg/claircore_texlive.status", "var/lib/dpkg/status", 357, []spot{
			{"base-files", "10.1ubuntu2.8", "amd64", "base-files", "10.1ubuntu2.8"},
		}},
		{"dpkg/scalibr_valid", "var/lib/dpkg/status", 7, []spot{
			{"attr", "1:2.5.1-4", "amd64", "attr", "1:2.5.1-4"}, // epoch
		}},
		// 2 Package: lines; the first stanza is an empty "Package:".
		{"dpkg/syft_image-dpkg_status", "var/lib/dpkg/status", 1, []spot{
			{"libpam-runtime", "1.1.8-3.6", "all", "pam", "1.1.8-3.6"},
		}},
		// distroless: no Status field, installed all the same.
		{"dpkg/syft_status.d_libsqlite3-0", "var/lib/dpkg/status.d/libsqlite3-0", 1, []spot{
			{"libsqlite3-0", "3.34.1-3", "arm64", "sqlite3", "3.34.1-3"},
		}},
		{"dpkg/syft_status.d_coreutils-relationships", "var/lib/dpkg/status.d/coreutils", 9, []spot{
			{"coreutils", "9.1-1", "arm64", "coreutils", "9.1-1"},
			{"libc6", "2.36-9+deb12u1", "arm64", "glibc", "2.36-9+deb12u1"},
		}},
		// 2 Package: lines, one "deinstall ok config-files".
		{"dpkg/syft_status.d_deinstall", "var/lib/dpkg/status", 1, []spot{
			{"linux-image-6.14.0-1012-aws", "6.14.0-1012.12~24.04.1", "amd64", "linux-signed-aws-6.14", "6.14.0-1012.12~24.04.1"},
		}},
		// 91 Package: lines, git is "deinstall ok config-files".
		{"dpkg/trivy_valid.status", "var/lib/dpkg/status", 90, []spot{
			{"bsdutils", "1:2.31.1-0.4ubuntu3.1", "amd64", "util-linux", "2.31.1-0.4ubuntu3.1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			res, err := scannertest.Scan(Scanner{}, scannertest.FromDisk(t, tt.layerPath, fixtures.Path(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != tt.count {
				t.Errorf("%d packages, want %d", len(res.Packages), tt.count)
			}
			for _, p := range res.Packages {
				if p.Kind != report.KindBinary || p.PackageDB != tt.layerPath || p.Source == nil ||
					p.Source.Kind != report.KindSource || p.PURL == "" || p.Source.PURL == "" {
					t.Errorf("malformed package %+v (source %+v)", p, p.Source)
				}
			}
			if tt.file == "dpkg/trivy_valid.status" && scannertest.Find(res.Packages, "git") != nil {
				t.Error("git (deinstall ok config-files) reported")
			}
			for _, s := range tt.spots {
				p := scannertest.Find(res.Packages, s.name)
				if p == nil {
					t.Errorf("%s not found", s.name)
					continue
				}
				got := spot{p.Name, p.Version, p.Arch, p.Source.Name, p.Source.Version}
				if got != s {
					t.Errorf("got %+v, want %+v", got, s)
				}
			}
		})
	}
}

// TestPURL checks package URLs and the namespace choice on corpus files:
// trivy's Ubuntu 18.04 status (aquasecurity/trivy), syft's Debian 11
// distroless entry and claircore's Debian 10 status (anchore/syft,
// quay/claircore).
func TestPURL(t *testing.T) {
	res, err := scannertest.Scan(Scanner{}, scannertest.FromDisk(t, "var/lib/dpkg/status", fixtures.Path(t, "dpkg/trivy_valid.status")))
	if err != nil {
		t.Fatal(err)
	}
	p := scannertest.Find(res.Packages, "bsdutils")
	if want := "pkg:deb/ubuntu/bsdutils@1:2.31.1-0.4ubuntu3.1?arch=amd64"; p.PURL != want {
		t.Errorf("PURL = %q, want %q", p.PURL, want)
	}
	if want := "pkg:deb/ubuntu/util-linux@2.31.1-0.4ubuntu3.1?arch=source"; p.Source.PURL != want {
		t.Errorf("source PURL = %q, want %q", p.Source.PURL, want)
	}

	res, err = scannertest.Scan(Scanner{}, scannertest.FromDisk(t, "var/lib/dpkg/status.d/libsqlite3-0", fixtures.Path(t, "dpkg/syft_status.d_libsqlite3-0")))
	if err != nil {
		t.Fatal(err)
	}
	if want := "pkg:deb/debian/libsqlite3-0@3.34.1-3?arch=arm64"; res.Packages[0].PURL != want {
		t.Errorf("PURL = %q, want %q", res.Packages[0].PURL, want)
	}

	res, err = scannertest.Scan(Scanner{}, scannertest.FromDisk(t, "var/lib/dpkg/status", fixtures.Path(t, "dpkg/claircore_postgresql.status")))
	if err != nil {
		t.Fatal(err)
	}
	if want := "pkg:deb/debian/postgresql-client@11%2B200%2Bdeb10u5?arch=all"; res.Packages[0].PURL != want {
		t.Errorf("PURL = %q, want %q", res.Packages[0].PURL, want)
	}

	// No Architecture: no arch qualifier.
	res, err = scannertest.Scan(Scanner{}, scannertest.File("var/lib/dpkg/status", []byte("Package: a\nStatus: install ok installed\nVersion: 1\n")))
	if err != nil {
		t.Fatal(err)
	}
	if want := "pkg:deb/debian/a@1"; res.Packages[0].PURL != want {
		t.Errorf("PURL = %q, want %q", res.Packages[0].PURL, want)
	}
}

// TestChoices pins down the decisions on inputs where dpkg and other scanners
// differ.
func TestChoices(t *testing.T) {
	const installed = "Package: a\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n"
	tests := []struct {
		name, path, data string
		want             []string // names, in order
	}{
		{"missing Status in status is not installed (as dpkg)", "var/lib/dpkg/status",
			"Package: a\nVersion: 1\n", nil},
		{"missing Status in status.d is installed (distroless)", "var/lib/dpkg/status.d/a",
			"Package: a\nVersion: 1\n", []string{"a"}},
		{"explicit Status in status.d is obeyed", "var/lib/dpkg/status.d/a",
			"Package: a\nStatus: deinstall ok config-files\nVersion: 1\n", nil},
		{"held packages are installed", "var/lib/dpkg/status",
			"Package: a\nStatus: hold ok installed\nVersion: 1\n", []string{"a"}},
		{"selected for removal but still installed", "var/lib/dpkg/status",
			"Package: a\nStatus: deinstall ok installed\nVersion: 1\n", []string{"a"}},
		{"unpacked is not installed", "var/lib/dpkg/status",
			"Package: a\nStatus: install ok unpacked\nVersion: 1\n", nil},
		{"not-installed needs no Version", "var/lib/dpkg/status",
			"Package: a\nStatus: purge ok not-installed\n\n" + installed, []string{"a"}},
		{"empty Package stanza skipped", "var/lib/dpkg/status",
			"Package:\n\n" + installed, []string{"a"}},
		{"stanza without Package skipped", "var/lib/dpkg/status",
			"Description: orphan\n\n" + installed, []string{"a"}},
		{"CRLF", "var/lib/dpkg/status",
			strings.ReplaceAll(installed+"Description: x\n more\n\n"+strings.Replace(installed, ": a", ": b", 1), "\n", "\r\n"), []string{"a", "b"}},
		{"blank lines of spaces, many blank lines, comments", "var/lib/dpkg/status",
			"\n\n# comment\n" + installed + " \t \n\n\n" + strings.Replace(installed, ": a", ": b", 1) + "\n\n", []string{"a", "b"}},
		{"line of blanks inside a stanza continues it (as dpkg)", "var/lib/dpkg/status",
			"Package: a\nStatus: install ok installed\nDescription: x\n \t\nVersion: 1\nArchitecture: all\n \n", []string{"a"}},
		{"no final newline", "var/lib/dpkg/status", strings.TrimSuffix(installed, "\n"), []string{"a"}},
		{"field names are case-insensitive", "var/lib/dpkg/status",
			"package: a\nSTATUS: install ok installed\nversion: 1\n", []string{"a"}},
		{"multi-arch same package twice", "var/lib/dpkg/status",
			installed + "\n" + strings.Replace(installed, "amd64", "i386", 1), []string{"a", "a"}},
		{"non-UTF-8 in a field not read", "var/lib/dpkg/status",
			installed + "Maintainer: Ren\xe9 <r@example.org>\nDescription: x\n caf\xe9\n", []string{"a"}},
		{"empty file", "var/lib/dpkg/status", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := scannertest.Scan(Scanner{}, scannertest.File(tt.path, []byte(tt.data)))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range res.Packages {
				got = append(got, p.Name)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	// Source parsing.
	for src, want := range map[string][2]string{
		"":                      {"a", "1.0-1"},
		"pam":                   {"pam", "1.0-1"},
		"pam (1.1.8-3.6)":       {"pam", "1.1.8-3.6"},
		"pam (2:1.0)":           {"pam", "2:1.0"},
		"pam   (  1.0+b1  )":    {"pam", "1.0+b1"},
		"gcc-defaults (1.176u)": {"gcc-defaults", "1.176u"},
	} {
		data := installed
		if src != "" {
			data += "Source: " + src + "\n"
		}
		res, err := scannertest.Scan(Scanner{}, scannertest.File("var/lib/dpkg/status", []byte(data)))
		if err != nil {
			t.Errorf("Source %q: %v", src, err)
			continue
		}
		s := res.Packages[0].Source
		if [2]string{s.Name, s.Version} != want {
			t.Errorf("Source %q: got %s %s, want %s", src, s.Name, s.Version, want)
		}
	}
}

// TestVcpkg: claircore's vcpkg database (quay/claircore test data) looks
// like a dpkg status file but has "Feature" stanzas without Version; dpkg
// rejects it (see TestOracle) and so does the scanner. The scanner never
// matches vcpkg's real path.
func TestVcpkg(t *testing.T) {
	_, err := scannertest.Scan(Scanner{}, scannertest.FromDisk(t, "var/lib/dpkg/status", fixtures.Path(t, "dpkg/claircore_vcpkg.status")))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"var/lib/dpkg/status", "stanza at line 29", `package "curl"`, "missing Version"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestBadInput checks that corrupt databases are errors naming the file and
// the line or stanza, and never panic. Truncated inputs are cut from
// aquasecurity/trivy's Ubuntu status fixture.
func TestBadInput(t *testing.T) {
	valid := scannertest.ReadFixture(t, "dpkg/trivy_valid.status")
	// Cut just before the Version line of the third stanza: the stanza is
	// installed and has no Version.
	idx := bytes.Index(valid, []byte("\nVersion: 10.1ubuntu2.2\n")) // base-files
	if idx < 0 {
		t.Fatal("fixture changed")
	}
	truncated := valid[:idx+1]
	md5sums := scannertest.ReadFixture(t, "dpkg/syft_status.d_libsqlite3-0.md5sums") // anchore/syft

	const ok = "Package: a\nStatus: install ok installed\nVersion: 1\n"
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated mid-stanza", truncated, `(package "base-files"): missing Version`},
		{"md5sums file", md5sums, "line 1: not a field"},
		{"binary junk", []byte("\x7fELF\x02\x01\x01\x00\x00\x00"), "line 1: NUL byte"},
		{"NUL in a value", []byte(ok + "Description: a\x00b\n"), "line 4: NUL byte"},
		{"random bytes", []byte("\xde\xad\xbe\xef\n\x13\x37"), "line 1: not a field"},
		{"invalid UTF-8 in Version", []byte("Package: a\nStatus: install ok installed\nVersion: 1\xff\n"), `line 3: stanza at line 1 (package "a"): field "Version" is not valid UTF-8`},
		{"giant line", []byte(ok + "Description: " + strings.Repeat("x", MaxLineLen) + "\n"), "line 4: longer than"},
		{"continuation first", []byte(" x\n" + ok), "line 1: continuation line outside a stanza"},
		{"continued Version", []byte(ok + " 2\n"), `field "Version" continues`},
		{"duplicate field", []byte(ok + "Version: 2\n"), `line 4: stanza at line 1 (package "a"): duplicate "Version"`},
		{"bad field name", []byte(ok + "Bad Name: x\n"), "line 4: invalid field name"},
		{"field name with dash", []byte(ok + "-X: y\n"), "line 4: field name"},
		{"empty field name", []byte(ok + ": y\n"), "line 4: empty field name"},
		{"bad package name", []byte("Package: -a\nStatus: install ok installed\nVersion: 1\n"), "Package: invalid name"},
		{"package name with blank", []byte("Package: a b\nStatus: install ok installed\nVersion: 1\n"), "Package: invalid name"},
		{"bad Status word", []byte("Package: a\nStatus: install ok sideways\nVersion: 1\n"), `unknown state "sideways"`},
		{"short Status", []byte("Package: a\nStatus: installed\nVersion: 1\n"), "want three words"},
		{"version with blank", []byte("Package: a\nStatus: install ok installed\nVersion: 1 2\n"), "contains blanks"},
		{"empty epoch", []byte("Package: a\nStatus: install ok installed\nVersion: :1\n"), "empty epoch"},
		{"bad epoch", []byte("Package: a\nStatus: install ok installed\nVersion: x:1\n"), "epoch"},
		{"huge epoch", []byte("Package: a\nStatus: install ok installed\nVersion: 99999999999:1\n"), "epoch"},
		{"nothing after epoch", []byte("Package: a\nStatus: install ok installed\nVersion: 1:\n"), "nothing after the epoch"},
		{"empty revision", []byte("Package: a\nStatus: install ok installed\nVersion: 1-\n"), "empty revision"},
		{"empty upstream", []byte("Package: a\nStatus: install ok installed\nVersion: -1\n"), "empty upstream"},
		{"config-files without Version", []byte("Package: a\nStatus: deinstall ok config-files\n"), "missing Version"},
		{"installed without Version", []byte("Package: a\nStatus: install ok installed\n"), "missing Version"},
		{"unclosed Source version", []byte(ok + "Source: pam (1.0\n"), `want "name" or "name (version)"`},
		{"Source junk", []byte(ok + "Source: pam 1.0\n"), `want "name" or "name (version)"`},
		{"bad Source name", []byte(ok + "Source: (1.0)\n"), "invalid source package name"},
		{"Source without blank before version", []byte(ok + "Source: pam(1.0)\n"), "invalid source package name"},
		{"bad Source version", []byte(ok + "Source: pam (1 2)\n"), "source version"},
		{"Architecture with control character", []byte(ok + "Architecture: amd\x0164\n"), "invalid Architecture"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []string{"var/lib/dpkg/status", "var/lib/dpkg/status.d/a"} {
				_, err := scannertest.Scan(Scanner{}, scannertest.File(p, tt.data))
				if err == nil {
					t.Fatalf("%s: no error", p)
				}
				if !strings.Contains(err.Error(), "dpkg: parsing "+p+": ") || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: error %q does not name the file and contain %q", p, err, tt.want)
				}
			}
		})
	}
}

// TestOrder checks that files are read in path order whatever order they
// come in, and that PackageDB is each package's own file.
func TestOrder(t *testing.T) {
	a := scannertest.File("var/lib/dpkg/status.d/b", []byte("Package: b\nVersion: 1\n"))
	b := scannertest.File("var/lib/dpkg/status.d/a", []byte("Package: a\nVersion: 1\n"))
	res, err := scannertest.Scan(Scanner{}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 2 || res.Packages[0].Name != "a" || res.Packages[0].PackageDB != "var/lib/dpkg/status.d/a" ||
		res.Packages[1].Name != "b" || res.Packages[1].PackageDB != "var/lib/dpkg/status.d/b" {
		t.Errorf("got %+v, %+v", res.Packages[0], res.Packages[1])
	}
	res, err = scannertest.Scan(Scanner{})
	if err != nil || res == nil || len(res.Packages) != 0 {
		t.Errorf("no files: %+v, %v", res, err)
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	stanza := []byte("Package: a\nStatus: install ok installed\nVersion: 1\n\n")
	// (A long Description keeps the parse of the filler quick.)
	longStanza := []byte("Package: a\nStatus: install ok installed\nVersion: 1\nDescription: " + strings.Repeat("x", 8000) + "\n\n")
	scannertest.CheckFailures(t, scannertest.Failures{Scanner: Scanner{}, Path: "var/lib/dpkg/status", Limit: MaxFileSize, Valid: stanza, Filler: longStanza})

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	// Cancellation is noticed while parsing a long file.
	long := bytes.Repeat(stanza, 10000)
	if _, err := Parse(cctx, bytes.NewReader(long), ParseOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled during: err = %v", err)
	}
}

// BenchmarkParse parses claircore's texlive status file (quay/claircore),
// the largest of the corpus.
func BenchmarkParse(b *testing.B) {
	data := scannertest.ReadFixture(b, "dpkg/claircore_texlive.status")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(context.Background(), bytes.NewReader(data), ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
