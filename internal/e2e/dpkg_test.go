package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
)

// TestDpkgDatabaseOfThisMachine indexes a layer made from this machine's own
// dpkg database and compares the report with what dpkg-query prints for it.
func TestDpkgDatabaseOfThisMachine(t *testing.T) {
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		t.Fatalf("this test needs a Debian machine's /var/lib/dpkg/status: %v", err)
	}
	osr, err := os.ReadFile("/etc/os-release")
	if err != nil {
		osr, err = os.ReadFile("/usr/lib/os-release")
		if err != nil {
			t.Fatalf("no os-release on this machine: %v", err)
		}
	}
	admin := t.TempDir()
	if err := os.WriteFile(filepath.Join(admin, "status"), status, 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(admin, "info"), 0o755)
	os.MkdirAll(filepath.Join(admin, "updates"), 0o755)
	out, err := exec.Command("dpkg-query", "--admindir", admin, "-W",
		"-f", `${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n`).Output()
	if err != nil {
		t.Fatalf("dpkg-query (package dpkg) is the oracle here and must be installed: %v", err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		// Installed, whether wanted for install or held ("ii", "hi").
		if len(f[0]) < 2 || f[0][1] != 'i' {
			continue
		}
		want = append(want, strings.Join(f[1:], " "))
	}
	slices.Sort(want)

	h := newHarness(t)
	h.start(h.config(1, true))
	m := h.push("host:1", map[string][]byte{"etc/os-release": osr, "var/lib/dpkg/status": status})
	r := h.indexWait(t, m)
	if r.State != report.StateIndexFinished {
		t.Fatalf("state %s: %s", r.State, r.Err)
	}
	var got []string
	for _, p := range r.Packages {
		sn, sv := "", ""
		if p.Source != nil {
			sn, sv = p.Source.Name, p.Source.Version
		}
		got = append(got, strings.Join([]string{p.Name, p.Version, p.Arch, sn, sv}, " "))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		for _, g := range got {
			if !slices.Contains(want, g) {
				t.Errorf("reported but not in dpkg-query: %s", g)
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("in dpkg-query but not reported: %s", w)
			}
		}
		t.Fatalf("%d packages reported, dpkg-query lists %d", len(got), len(want))
	}
	t.Logf("%d packages match dpkg-query", len(got))
}
