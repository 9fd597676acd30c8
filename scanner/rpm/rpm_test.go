package rpm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/owned"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// Fixtures (testdata/fixtures/rpm; provenance, licences and package counts in
// testdata/fixtures/SOURCES.md):
//   - go-rpmdb_*: knqyf263/go-rpmdb test data (MIT): the SLE 15 BCI NDB
//     Packages.db (35 packages), the CBL-Mariner 2.0 rpmdb.sqlite (129), the
//     Amazon Linux 2023 rpmdb.sqlite (103 + gpg-pubkey, from go-rpmdb PR 42)
//     and a BerkeleyDB Packages holding libuuid.
//   - preflight_*: redhat-openshift-ecosystem/openshift-preflight test data
//     (Apache-2.0): tzdata alone, in BerkeleyDB (EL8) and SQLite (Fedora 36).
//   - scalibr_Packages_epoch: google/osv-scalibr (Apache-2.0), one package
//     with epoch 1.
//   - syft_redhat_Packages: anchore/syft (Apache-2.0), dive 0.9.2 on centos:8.
//   - claircore_*: quay/claircore (Apache-2.0): an SQLite file without a
//     Packages table, dnf history databases, a raw header blob.

const rpmPath = "/usr/bin/rpm"

// dbCase is a fixture and where it lives in a layer.
type dbCase struct {
	fixture   string
	layerPath string
	backend   string // rpm's _db_backend for the oracle; "" for NDB, which Debian's rpm lacks
	count     int    // packages less gpg-pubkey (SOURCES.md)
	namespace string
}

var dbCases = []dbCase{
	{"go-rpmdb_libuuid_Packages", "var/lib/rpm/Packages", "bdb_ro", 1, "redhat"},
	{"preflight_bdb_Packages", "var/lib/rpm/Packages", "bdb_ro", 1, "redhat"},
	{"scalibr_Packages_epoch", "var/lib/rpm/Packages", "bdb_ro", 1, "redhat"}, // no vendor, no release package
	{"syft_redhat_Packages", "var/lib/rpm/Packages", "bdb_ro", 1, "redhat"},
	{"go-rpmdb_amazonlinux2023-plain_rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite", "sqlite", 102, "amazon"},
	{"go-rpmdb_cbl-mariner-2.0_rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite", "sqlite", 129, "mariner"},
	{"preflight_sqlite_rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite", "sqlite", 1, "fedora"}, // vendor "Fedora Project"
	{"go-rpmdb_sle15-bci_Packages.db", "usr/lib/sysimage/rpm/Packages.db", "", 35, "suse"},
}

// oracle runs Debian's rpm on a copy of the fixture and returns one
// "name\tepoch:version-release\tarch\tsourcerpm" row per package (gpg-pubkey
// left out, as the scanner does), sorted, and the package files with their
// modes, "path\tmode" rows.
func oracle(t *testing.T, fixture, backend string) (pkgs, files []string) {
	t.Helper()
	name := "rpmdb.sqlite"
	if backend == "bdb_ro" {
		name = "Packages"
	}
	dir := t.TempDir()
	data := scannertest.ReadFixture(t, "rpm/"+fixture)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return oracleDir(t, dir, backend)
}

// oracleDir is oracle on the database in dir, which the caller made.
func oracleDir(t *testing.T, dir, backend string) (pkgs, files []string) {
	t.Helper()
	if _, err := os.Stat(rpmPath); err != nil {
		t.Fatalf("the rpm oracle needs %s (Debian package rpm: apt-get install -y rpm): %v", rpmPath, err)
	}
	run := func(qf string) []string {
		cmd := exec.Command(rpmPath, "--dbpath", dir, "--define", "_db_backend "+backend, "-qa", "--qf", qf)
		cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin", "HOME=" + dir}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("rpm -qa on %s: %v: %s", dir, err, stderr.String())
		}
		var rows []string
		sc := bufio.NewScanner(&stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if l := sc.Text(); l != "" && !strings.HasPrefix(l, "gpg-pubkey\t") {
				rows = append(rows, l)
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(rows)
		return rows
	}
	pkgs = run(`%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n`)
	// gpg-pubkey pseudo-packages have no files.
	files = run(`[%{FILENAMES}\t%{FILEMODES}\n]`)
	return pkgs, files
}

func scan(t *testing.T, c dbCase) *scanner.Result {
	t.Helper()
	f := scannertest.FromDisk(t, c.layerPath, fixtures.Path(t, "rpm/"+c.fixture))
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{f})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// rows renders packages like oracle does.
func rows(pkgs []*report.Package) []string {
	var out []string
	for _, p := range pkgs {
		v := p.Version
		if !strings.Contains(v, ":") {
			v = "0:" + v
		}
		src := "(none)"
		if p.Source != nil {
			_, sv, _ := strings.Cut(p.Source.Version, ":")
			if !strings.Contains(p.Source.Version, ":") {
				sv = p.Source.Version
			}
			src = p.Source.Name + "-" + sv + ".src.rpm"
		}
		out = append(out, p.Name+"\t"+v+"\t"+p.Arch+"\t"+src)
	}
	slices.Sort(out)
	return out
}

// TestOracle compares the scanner with Debian's rpm 4.18 on every BerkeleyDB
// and SQLite fixture: the same packages (name, epoch:version-release, arch,
// source rpm) and the same owned files (rpm's file list, filtered by the
// owned rule with rpm's file modes).
func TestOracle(t *testing.T) {
	for _, c := range dbCases {
		if c.backend == "" {
			continue
		}
		t.Run(c.fixture, func(t *testing.T) {
			want, wantFiles := oracle(t, c.fixture, c.backend)
			res := scan(t, c)
			got := rows(res.Packages)
			if !slices.Equal(got, want) {
				t.Errorf("packages differ from rpm -qa:\n got %q\nwant %q", got, want)
			}
			if len(got) != c.count {
				t.Errorf("%d packages, SOURCES.md counts %d", len(got), c.count)
			}
			wantOwned := map[string]bool{}
			for _, r := range wantFiles {
				name, mode, _ := strings.Cut(r, "\t")
				if mode == "(none)" { // a package without files
					continue
				}
				var m uint32
				if _, err := fmt.Sscanf(mode, "%d", &m); err != nil {
					t.Fatalf("rpm file mode %q: %v", mode, err)
				}
				if p, ok := owned.Clean(name); ok && owned.Relevant(p, m&0o170000 == 0o100000) {
					for _, a := range owned.Aliases(p) {
						wantOwned[a] = true
					}
				}
			}
			if len(res.OwnedFiles) != len(wantOwned) {
				t.Errorf("%d owned files, rpm's file lists give %d", len(res.OwnedFiles), len(wantOwned))
			}
			for _, p := range res.OwnedFiles {
				if !wantOwned[p] {
					t.Errorf("owned file %q is not in rpm's file lists", p)
				}
			}
			if !slices.IsSorted(res.OwnedFiles) {
				t.Error("OwnedFiles not sorted")
			}
			for _, p := range res.Packages {
				if p.PackageDB != c.layerPath || p.Kind != report.KindBinary {
					t.Errorf("%s: PackageDB %q Kind %q", p.Name, p.PackageDB, p.Kind)
				}
				if !strings.HasPrefix(p.PURL, "pkg:rpm/"+c.namespace+"/") {
					t.Errorf("%s: PURL %q, want namespace %s", p.Name, p.PURL, c.namespace)
				}
			}
			if len(res.Warnings) > 0 {
				t.Errorf("warnings: %q", res.Warnings)
			}
		})
	}
}

// TestNDB compares the NDB fixture, which Debian's rpm cannot read (no ndb
// backend), with the listing in testdata/fixtures/reports/derived (made with
// go-rpmdb v0.1.1 and equal to go-rpmdb's own expectation SLE15WithNDB()).
func TestNDB(t *testing.T) {
	c := dbCases[len(dbCases)-1]
	tsv := scannertest.ReadFixture(t, "reports/derived/go-rpmdb_sle15-bci_Packages.db.rpm-qa.tsv")
	var want []string
	for _, l := range strings.Split(string(tsv), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, "\t") // NAME EPOCH VERSION RELEASE ARCH
		if len(f) != 5 {
			t.Fatalf("row %q: %d columns", l, len(f))
		}
		v := f[2] + "-" + f[3]
		if f[1] != "(none)" && f[1] != "0" {
			v = f[1] + ":" + v
		}
		want = append(want, f[0]+" "+v+" "+f[4])
	}
	slices.Sort(want)
	res := scan(t, c)
	var got []string
	for _, p := range res.Packages {
		got = append(got, p.Name+" "+p.Version+" "+p.Arch)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if len(got) != c.count {
		t.Errorf("%d packages, want %d", len(got), c.count)
	}
	bash := scannertest.Find(res.Packages, "bash")
	if bash == nil || bash.Version != "4.4-19.6.1" || bash.Source == nil || bash.Source.Name != "bash" ||
		bash.PURL != "pkg:rpm/suse/bash@4.4-19.6.1?arch=x86_64" || bash.PackageDB != c.layerPath {
		t.Errorf("bash = %+v", bash)
	}
	if !slices.Contains(res.OwnedFiles, "usr/bin/bash") {
		t.Errorf("usr/bin/bash not among the owned files (%d)", len(res.OwnedFiles))
	}
}

// TestFields checks every field of a few packages against values read from
// the fixtures with rpm -qi.
func TestFields(t *testing.T) {
	tests := []struct {
		c    dbCase
		want report.Package
	}{
		{dbCases[2], report.Package{ // scalibr_Packages_epoch: hello 1:0.0.1-rls
			Name: "hello", Version: "1:0.0.1-rls", Kind: report.KindBinary, Arch: "x86_64", PackageDB: "var/lib/rpm/Packages",
			PURL: "pkg:rpm/redhat/hello@0.0.1-rls?arch=x86_64&epoch=1",
			Source: &report.Package{Name: "hello", Version: "1:0.0.1-rls", Kind: report.KindSource,
				PURL: "pkg:rpm/redhat/hello@0.0.1-rls?arch=src&epoch=1"},
		}},
		{dbCases[0], report.Package{ // go-rpmdb_libuuid_Packages
			Name: "libuuid", Version: "2.32.1-42.el8_8", Kind: report.KindBinary, Arch: "x86_64", PackageDB: "var/lib/rpm/Packages",
			PURL: "pkg:rpm/redhat/libuuid@2.32.1-42.el8_8?arch=x86_64",
			Source: &report.Package{Name: "util-linux", Version: "2.32.1-42.el8_8", Kind: report.KindSource,
				PURL: "pkg:rpm/redhat/util-linux@2.32.1-42.el8_8?arch=src"},
		}},
		{dbCases[6], report.Package{ // preflight_sqlite_rpmdb.sqlite: Fedora's tzdata
			Name: "tzdata", Version: "2022a-2.fc36", Kind: report.KindBinary, Arch: "noarch", PackageDB: "usr/lib/sysimage/rpm/rpmdb.sqlite",
			PURL: "pkg:rpm/fedora/tzdata@2022a-2.fc36?arch=noarch",
			Source: &report.Package{Name: "tzdata", Version: "2022a-2.fc36", Kind: report.KindSource,
				PURL: "pkg:rpm/fedora/tzdata@2022a-2.fc36?arch=src"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.c.fixture, func(t *testing.T) {
			res := scan(t, tt.c)
			p := scannertest.Find(res.Packages, tt.want.Name)
			if p == nil {
				t.Fatalf("no package %s", tt.want.Name)
			}
			if p.Source == nil || *p.Source != *tt.want.Source {
				t.Errorf("Source = %+v, want %+v", p.Source, tt.want.Source)
			}
			a, b := *p, tt.want
			a.Source, b.Source = nil, nil
			if a != b {
				t.Errorf("got  %+v\nwant %+v", a, b)
			}
		})
	}
	// Amazon Linux: python3-dnf owns site-packages; curl-minimal is the
	// binary package of the curl source package.
	res := scan(t, dbCases[4])
	curl := scannertest.Find(res.Packages, "curl-minimal")
	if curl == nil || curl.Source == nil || curl.Source.Name != "curl" || curl.Source.Version != "8.0.1-1.amzn2023.0.1" {
		t.Errorf("curl-minimal = %+v", curl)
	}
	if scannertest.Find(res.Packages, "gpg-pubkey") != nil {
		t.Error("gpg-pubkey reported")
	}
	var site int
	for _, p := range res.OwnedFiles {
		if strings.Contains(p, "/site-packages/dnf/") {
			site++
		}
	}
	if site == 0 {
		t.Error("no owned file of python3-dnf under site-packages")
	}
}

// TestSpooled scans fixtures handed over as the layer reader hands over
// spooled files (Open returns an *os.File), which the scanner reads in
// place, except SQLite, which it copies.
func TestSpooled(t *testing.T) {
	for _, c := range dbCases {
		t.Run(c.fixture, func(t *testing.T) {
			p := fixtures.Path(t, "rpm/"+c.fixture)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			f := scannertest.FileFunc(c.layerPath, fi.Size(), func() (io.ReadCloser, error) { return os.Open(p) })
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{f})
			if err != nil {
				t.Fatal(err)
			}
			if want := rows(scan(t, c).Packages); !slices.Equal(rows(res.Packages), want) || len(want) != c.count {
				t.Errorf("spooled: %d packages, in memory: %d, want %d", len(res.Packages), len(want), c.count)
			}
		})
	}
}

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "rpm", Version: "3", Kind: scanner.KindPackage, MatchVersion: "2"}, map[string]bool{
		"var/lib/rpm/Packages":                                true,
		"var/lib/rpm/Packages.db":                             true,
		"var/lib/rpm/rpmdb.sqlite":                            true,
		"usr/lib/sysimage/rpm/Packages":                       true,
		"usr/lib/sysimage/rpm/Packages.db":                    true,
		"usr/lib/sysimage/rpm/rpmdb.sqlite":                   true,
		"var/lib/rpm/rpmdb.sqlite-wal":                        true,
		"usr/lib/sysimage/rpm/rpmdb.sqlite-wal":               true,
		"var/lib/dnf/history.sqlite":                          true,
		"usr/lib/sysimage/libdnf5/transaction_history.sqlite": true,
		"var/lib/rpm/rpmdb.sqlite-shm":                        false,
		"var/lib/rpm/Packages-wal":                            false,
		"var/lib/rpm/Name":                                    false,
		"var/lib/rpm/sub/Packages":                            false,
		"x/var/lib/rpm/Packages":                              false,
		"/var/lib/rpm/Packages":                               false,
		"var/lib/dnf/history.sqlite-wal":                      false,
		"var/lib/dnf/rpmdb.sqlite-wal":                        false,
		"usr/lib/sysimage/libdnf5/packages.db":                false,
		"usr/lib/sysimage/libdnf5/history.sqlite":             false,
	})
}

func TestParseSourceRPM(t *testing.T) {
	for _, tt := range []struct{ in, name, vr string }{
		{"util-linux-2.32.1-42.el8_8.src.rpm", "util-linux", "2.32.1-42.el8_8"},
		{"system-release-2023.1.20230825-0.amzn2023.src.rpm", "system-release", "2023.1.20230825-0.amzn2023"},
		{"hello-0.0.1-rls.src.rpm", "hello", "0.0.1-rls"},
		{"kernel-5.14.0-70.nosrc.rpm", "kernel", "5.14.0-70"},
		{"(none)", "", ""},
		{"", "", ""},
		{"foo.src.rpm", "", ""},
		{"foo-1.src.rpm", "", ""},
		{"-1-2.src.rpm", "", ""},
		{"foo--2.src.rpm", "", ""},
		{"foo-1-.src.rpm", "", ""},
		{"foo-1-2.rpm", "", ""},
	} {
		name, vr, ok := ParseSourceRPM(tt.in)
		if name != tt.name || vr != tt.vr || ok != (tt.name != "") {
			t.Errorf("ParseSourceRPM(%q) = %q, %q, %v; want %q, %q", tt.in, name, vr, ok, tt.name, tt.vr)
		}
	}
}

func TestModule(t *testing.T) {
	for in, want := range map[string]string{
		"nodejs:14:8030020210527075232:bd1311ed": "nodejs:14",
		"perl:5.26:820181219174508:9edba152":     "perl:5.26",
		"":                                       "",
		"nodejs":                                 "",
		"nodejs::1:2":                            "",
		":14:1:2":                                "",
	} {
		if got := module(in); got != want {
			t.Errorf("module(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEmptySQLite: an SQLite file without a Packages table is an empty
// database, as rpm makes it (quay/claircore's no_packages.sqlite, and dnf's
// history databases, which are SQLite too).
func TestEmptySQLite(t *testing.T) {
	for _, name := range []string{"claircore_no_packages.sqlite", "claircore_dnf4_history.sqlite", "claircore_dnf5_transaction_history.sqlite"} {
		res, err := Scanner{}.Scan(context.Background(), []scanner.File{
			scannertest.FromDisk(t, "var/lib/rpm/rpmdb.sqlite", fixtures.Path(t, "rpm/"+name)),
		})
		if err != nil || len(res.Packages) != 0 || len(res.OwnedFiles) != 0 {
			t.Errorf("%s: %v, %v", name, res, err)
		}
	}
}

// TestBadInput: files that are not rpm databases, truncated or corrupted
// databases: an error naming the file, never a panic, in bounded time.
func TestBadInput(t *testing.T) {
	read := func(name string) []byte {
		return scannertest.ReadFixture(t, "rpm/"+name)
	}
	bdb := read("preflight_bdb_Packages")
	ndb := read("go-rpmdb_sle15-bci_Packages.db")
	sqlite := read("preflight_sqlite_rpmdb.sqlite")
	flip := func(b []byte, at int, v byte) []byte {
		c := slices.Clone(b)
		c[at] = v
		return c
	}
	type tc struct {
		name string
		data []byte
		want string
	}
	tests := []tc{
		{"empty", nil, "not an rpm database"},
		{"text", []byte("hello, world\n"), "not an rpm database"},
		{"raw header blob", read("claircore_package.header"), "not an rpm database"},
		{"rpm manifest text", read("syft_container-manifest-2"), "not an rpm database"},
		{"BDB metadata only", bdb[:512], "past the end of the file"},
		{"BDB bad page size", flip(bdb, 21, 0x13), "invalid page size"},
		{"NDB header only", ndb[:32], "past the end"},
		{"NDB slot pages 0", flip(ndb, 12, 0), "slot pages"},
		{"SQLite header only", sqlite[:100], "SQLite"},
	}
	// Truncations of every format, at several points.
	for _, f := range []struct {
		name string
		data []byte
	}{{"BDB", bdb}, {"NDB", ndb}, {"SQLite", sqlite}} {
		for _, frac := range []int{2, 3, 5, 10} {
			tests = append(tests, tc{fmt.Sprintf("%s cut to 1/%d", f.name, frac), f.data[:len(f.data)/frac], ""})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, lp := range []string{"var/lib/rpm/Packages", "usr/lib/sysimage/rpm/rpmdb.sqlite"} {
				start := time.Now()
				res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(lp, tt.data)})
				if err == nil {
					t.Fatalf("%s: no error (%d packages)", lp, len(res.Packages))
				}
				if !strings.Contains(err.Error(), lp) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: error %q does not name the file and contain %q", lp, err, tt.want)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("%s: took %s", lp, d)
				}
			}
		})
	}
}

// TestCorruptBytes flips bytes all over the small BerkeleyDB and NDB
// fixtures: any outcome but a panic or a hang is acceptable, and an error
// names the file.
func TestCorruptBytes(t *testing.T) {
	for _, name := range []string{"preflight_bdb_Packages", "syft_redhat_Packages", "go-rpmdb_libuuid_Packages", "go-rpmdb_sle15-bci_Packages.db"} {
		data := scannertest.ReadFixture(t, "rpm/"+name)
		step := len(data) / 61
		for at := 0; at < len(data); at += step {
			c := slices.Clone(data)
			c[at] ^= 0xff
			_, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("var/lib/rpm/Packages", c)})
			if err != nil && !strings.Contains(err.Error(), "var/lib/rpm/Packages") {
				t.Errorf("%s byte %d: error %q does not name the file", name, at, err)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	big := scannertest.FileFunc("var/lib/rpm/Packages", MaxFileSize+1, func() (io.ReadCloser, error) {
		t.Error("Open called on a file over the limit")
		return nil, errors.New("unreachable")
	})
	if _, err := (Scanner{}).Scan(context.Background(), []scanner.File{big}); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("oversized: %v", err)
	}
	boom := errors.New("boom")
	broken := scannertest.FileFunc("var/lib/rpm/Packages", 10, func() (io.ReadCloser, error) { return nil, boom })
	if _, err := (Scanner{}).Scan(context.Background(), []scanner.File{broken}); !errors.Is(err, boom) {
		t.Errorf("open error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := scannertest.FromDisk(t, "var/lib/rpm/Packages", fixtures.Path(t, "rpm/preflight_bdb_Packages"))
	if _, err := (Scanner{}).Scan(ctx, []scanner.File{f}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
