package dpkg

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

const dpkgQueryPath = "/usr/bin/dpkg-query"

// dpkgQuery runs the real dpkg-query on status, copied into a fresh admin
// directory, and returns one "name\tversion\tarch\tsource\tsourceversion"
// row per installed package, sorted. A package is installed when the second
// letter of its status abbreviation is 'i' (state "installed"), which is the
// scanner's rule too. dpkg-query rejecting the database is a non-nil error
// carrying its message; dpkg-query missing fails the test.
func dpkgQuery(t *testing.T, status []byte) ([]string, error) {
	t.Helper()
	if _, err := os.Stat(dpkgQueryPath); err != nil {
		t.Fatalf("the dpkg oracle needs %s (Debian package dpkg): %v", dpkgQueryPath, err)
	}
	dir := t.TempDir()
	for _, d := range []string{"info", "updates"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "available"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "status"), status, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dpkgQueryPath, "--admindir", dir, "-W",
		"-f", `${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t${db:Status-Abbrev}\n`)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("running %s: %v", dpkgQueryPath, err)
		}
		return nil, errors.New(strings.TrimSpace(stderr.String()))
	}
	var rows []string
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("dpkg-query row %q: %d fields, want 6", line, len(f))
		}
		if abbrev := f[5]; len(abbrev) >= 2 && abbrev[1] == 'i' {
			rows = append(rows, strings.Join(f[:5], "\t"))
		}
	}
	sort.Strings(rows)
	return rows, nil
}

// scanRows scans status as var/lib/dpkg/status and returns rows shaped like
// dpkgQuery's.
func scanRows(t *testing.T, status []byte) ([]string, error) {
	t.Helper()
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("var/lib/dpkg/status", status)})
	if err != nil {
		return nil, err
	}
	rows := make([]string, 0, len(res.Packages))
	for _, p := range res.Packages {
		rows = append(rows, strings.Join([]string{p.Name, p.Version, p.Arch, p.Source.Name, p.Source.Version}, "\t"))
	}
	sort.Strings(rows)
	return rows, nil
}

func diffRows(t *testing.T, got, want []string) {
	t.Helper()
	in := func(rows []string) map[string]int {
		m := make(map[string]int)
		for _, r := range rows {
			m[r]++
		}
		return m
	}
	g, w := in(got), in(want)
	n := 0
	for r, c := range w {
		if g[r] != c && n < 20 {
			t.Errorf("dpkg-query has %q ×%d, scanner ×%d", r, c, g[r])
			n++
		}
	}
	for r, c := range g {
		if w[r] != c && n < 20 {
			t.Errorf("scanner has %q ×%d, dpkg-query ×%d", r, c, w[r])
			n++
		}
	}
	if len(got) != len(want) {
		t.Errorf("scanner found %d packages, dpkg-query %d", len(got), len(want))
	}
}

// TestOracle compares the scanner with dpkg-query on every dpkg fixture of
// the corpus, each copied in as an admin directory's status file, and on
// this machine's own /var/lib/dpkg/status. Fixtures: quay/claircore
// (claircore_*), anchore/syft (syft_*), aquasecurity/trivy (trivy_*) and
// google/osv-scalibr (scalibr_*) test data; see testdata/fixtures/SOURCES.md.
//
// Where the two must disagree the case says so: both reject claircore's
// vcpkg database (a stanza without Version) and syft's md5sums companion
// file (not deb822); syft's image-dpkg status opens with an empty
// "Package:" stanza that dpkg-query rejects and the scanner skips, and ends
// without the final newline dpkg-query insists on, so it is compared with
// dpkg-query on the file without that stanza and with a newline added.
func TestOracle(t *testing.T) {
	for _, c := range oracleCases(t) {
		t.Run(c.name, func(t *testing.T) { checkOracle(t, c) })
	}
}

// oracleCase is a dpkg database TestOracle gives dpkg-query and the scanner.
type oracleCase struct {
	name       string
	data       []byte
	bothReject bool
	min        int // fewest installed packages expected, to catch an empty comparison
}

// oracleCases are every dpkg fixture, each with its expectation, and this
// machine's own database.
func oracleCases(t *testing.T) []oracleCase {
	var cases []oracleCase
	expect := map[string]struct {
		bothReject bool
		min        int
	}{
		"claircore_debian-only.status":          {min: 1},
		"claircore_postgresql.status":           {min: 3},
		"claircore_texlive.status":              {min: 357},
		"claircore_vcpkg.status":                {bothReject: true},
		"scalibr_valid":                         {min: 7},
		"syft_image-dpkg_status":                {min: 1},
		"syft_status.d_coreutils-relationships": {min: 9},
		"syft_status.d_deinstall":               {min: 1},
		"syft_status.d_libsqlite3-0":            {min: 0}, // no Status: not installed to dpkg
		"syft_status.d_libsqlite3-0.md5sums":    {bothReject: true},
		"trivy_valid.status":                    {min: 90},
	}
	paths, err := filepath.Glob(filepath.Join(fixtures.Path(t, "dpkg"), "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		name := filepath.Base(p)
		e, ok := expect[name]
		if !ok {
			t.Errorf("dpkg fixture %s has no oracle expectation", name)
			continue
		}
		delete(expect, name)
		data := scannertest.ReadFile(t, p)
		cases = append(cases, oracleCase{name, data, e.bothReject, e.min})
	}
	for name := range expect {
		t.Errorf("expected dpkg fixture %s is missing", name)
	}
	host, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		t.Fatalf("this machine's dpkg database is part of the oracle test: %v", err)
	}
	cases = append(cases, oracleCase{name: "host /var/lib/dpkg/status", data: host, min: 1})
	return cases
}

// checkOracle compares what dpkg-query and the scanner find in c.
func checkOracle(t *testing.T, c oracleCase) {
	want, qerr := dpkgQuery(t, c.data)
	got, serr := scanRows(t, c.data)
	if c.bothReject {
		if qerr == nil || serr == nil {
			t.Fatalf("want both to reject: dpkg-query error %v, scanner error %v", qerr, serr)
		}
		t.Logf("dpkg-query: %v\nscanner: %v", qerr, serr)
		return
	}
	if c.name == "syft_image-dpkg_status" {
		if qerr == nil {
			t.Fatal("dpkg-query accepted the empty Package stanza; the test's premise is wrong")
		}
		trimmed, ok := bytes.CutPrefix(c.data, []byte("Package:\n\n"))
		if !ok {
			t.Fatal("fixture does not start with an empty Package stanza")
		}
		// The fixture also lacks a final newline, which dpkg
		// requires and the scanner does not.
		want, qerr = dpkgQuery(t, append(trimmed, '\n'))
	}
	if qerr != nil {
		t.Fatalf("dpkg-query: %v", qerr)
	}
	if serr != nil {
		t.Fatalf("scanner: %v", serr)
	}
	if len(want) < c.min {
		t.Errorf("dpkg-query found %d installed packages, want at least %d", len(want), c.min)
	}
	diffRows(t, got, want)
}
