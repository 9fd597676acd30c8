package dpkg

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/owned"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// TestOwnedFilesOracle scans this machine's own dpkg database (status and
// every info/*.list file) and compares Result.OwnedFiles with what the real
// dpkg-query -L lists for every installed package, filtered by the same
// rule. The machine is a Debian system with python3 packages installed
// (python3-apt and others own dist-packages directories).
func TestOwnedFilesOracle(t *testing.T) {
	const admin = "/var/lib/dpkg"
	if _, err := os.Stat(dpkgQueryPath); err != nil {
		t.Fatalf("the dpkg oracle needs %s (Debian package dpkg): %v", dpkgQueryPath, err)
	}
	status, err := os.ReadFile(filepath.Join(admin, "status"))
	if err != nil {
		t.Fatalf("this test reads the machine's dpkg database: %v", err)
	}
	files := []scanner.File{scannertest.File("var/lib/dpkg/status", status)}
	lists, err := filepath.Glob(filepath.Join(admin, "info", "*.list"))
	if err != nil || len(lists) == 0 {
		t.Fatalf("no %s/info/*.list files (%v)", admin, err)
	}
	for _, l := range lists {
		files = append(files, scannertest.FromDisk(t, "var/lib/dpkg/info/"+filepath.Base(l), l))
	}
	res, err := Scanner{}.Scan(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) > 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}

	want := dpkgOwnedFiles(t, admin, lists, res.Packages)
	got := map[string]bool{}
	for _, p := range res.OwnedFiles {
		got[p] = true
	}
	if !slices.IsSorted(res.OwnedFiles) || len(got) != len(res.OwnedFiles) {
		t.Errorf("OwnedFiles not sorted and unique")
	}
	var missing, extra []string
	for p := range want {
		if !got[p] {
			missing = append(missing, p)
		}
	}
	for p := range got {
		if !want[p] {
			extra = append(extra, p)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		slices.Sort(missing)
		slices.Sort(extra)
		t.Errorf("%d owned files dpkg-query lists are missing (first: %.5q); %d extra (first: %.5q)", len(missing), missing, len(extra), extra)
	}
	if len(want) < 100 {
		t.Errorf("only %d relevant owned files on this machine: the oracle proves little", len(want))
	}
	t.Logf("%d installed packages, %d .list files, %d owned files compared", len(res.Packages), len(lists), len(want))
}

// dpkgOwnedFiles is the oracle: what dpkg-query -L lists for every package
// of pkgs, filtered and given its aliases as the scanner does.
func dpkgOwnedFiles(t *testing.T, admin string, lists []string, pkgs []*report.Package) map[string]bool {
	t.Helper()
	var names []string
	for _, p := range pkgs {
		n := p.Name
		if strings.Contains(filepath.Base(findList(lists, p.Name, p.Arch)), ":") {
			n += ":" + p.Arch
		}
		names = append(names, n)
	}
	cmd := exec.Command(dpkgQueryPath, append([]string{"--admindir", admin, "-L"}, names...)...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dpkg-query -L: %v", err)
	}
	want := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "/") { // "package diverts others to: ..." and the like
			continue
		}
		if p, ok := owned.Clean(line); ok && owned.Relevant(p, true) {
			for _, a := range owned.Aliases(p) {
				want[a] = true
			}
		}
	}
	return want
}

// findList returns the .list file of package name (arch-qualified or not).
func findList(lists []string, name, arch string) string {
	for _, l := range lists {
		if b := filepath.Base(l); b == name+".list" || b == name+":"+arch+".list" {
			return l
		}
	}
	return ""
}

// TestOwnedFilesRules checks which .list files count and what is kept.
func TestOwnedFilesRules(t *testing.T) {
	status := []byte("Package: python3-six\nStatus: install ok installed\nVersion: 1.16.0-4\nArchitecture: all\n\n" +
		"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nArchitecture: amd64\nMulti-Arch: same\n\n" +
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: all\n\n")
	sixList := []byte("/.\n/usr\n/usr/lib\n/usr/lib/python3\n/usr/lib/python3/dist-packages\n" +
		"/usr/lib/python3/dist-packages/six-1.16.0.egg-info\n/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO\n" +
		"/usr/lib/python3/dist-packages/six.py\n/usr/share/doc/python3-six/copyright\n")
	libcList := []byte("/.\n/sbin/ldconfig\n/usr/lib/x86_64-linux-gnu/libc.so.6\n/usr/bin/ldd\n")
	goneList := []byte("/usr/lib/python3/dist-packages/gone.py\n")
	orphanList := []byte("/usr/bin/orphan\n")
	tests := []struct {
		name  string
		files []scanner.File
		want  []string
		warn  string
	}{
		{"installed only", []scanner.File{
			scannertest.File("var/lib/dpkg/status", status),
			scannertest.File("var/lib/dpkg/info/python3-six.list", sixList),
			scannertest.File("var/lib/dpkg/info/libc6:amd64.list", libcList),
			scannertest.File("var/lib/dpkg/info/gone.list", goneList),
			scannertest.File("var/lib/dpkg/info/orphan.list", orphanList),
		}, []string{
			"sbin/ldconfig", "usr/bin/ldd",
			"usr/lib/python3/dist-packages/six-1.16.0.egg-info", "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
			"usr/lib/python3/dist-packages/six.py", "usr/sbin/ldconfig",
		}, ""},
		{"no status file: every list counts", []scanner.File{
			scannertest.File("var/lib/dpkg/info/gone.list", goneList),
			scannertest.File("var/lib/dpkg/info/orphan.list", orphanList),
		}, []string{"usr/bin/orphan", "usr/lib/python3/dist-packages/gone.py"}, ""},
		{"binary list skipped with a warning", []scanner.File{
			scannertest.File("var/lib/dpkg/info/orphan.list", []byte("/usr/bin/a\x00b\n")),
		}, []string{}, "NUL byte"},
		{"oversized list skipped with a warning", []scanner.File{
			scannertest.FileFunc("var/lib/dpkg/info/orphan.list", MaxListSize+1, nil),
		}, []string{}, "exceeds the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Scanner{}.Scan(context.Background(), tt.files)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.OwnedFiles, tt.want) {
				t.Errorf("OwnedFiles = %q\nwant %q", res.OwnedFiles, tt.want)
			}
			if tt.warn == "" && len(res.Warnings) > 0 || tt.warn != "" && (len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], tt.warn) || !strings.Contains(res.Warnings[0], "orphan.list")) {
				t.Errorf("Warnings = %q, want one naming the file with %q", res.Warnings, tt.warn)
			}
		})
	}
}
