package rhelrepo

import (
	"context"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/dnf"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// Fixtures: quay/claircore's dnf history test databases (Apache-2.0;
// testdata/fixtures/rpm, SOURCES.md): internal/dnf/testdata/dnf4/var/lib/dnf/
// history.sqlite, a RHEL 9 image whose packages came from two
// repositories, and internal/dnf/testdata/dnf5/usr/lib/sysimage/libdnf5/
// transaction_history.sqlite, a Fedora 42 image (one repository).
const (
	appstream = "rhel-9-for-x86_64-appstream-rpms"
	baseos    = "rhel-9-for-x86_64-baseos-rpms"
	fedora    = "aea2214b263845539cc9b774ac8dd4c7"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	return scannertest.ReadFixture(t, "rpm/"+name)
}

// removeBaseOS returns the dnf4 fixture with a third transaction that
// removes every package installed from baseos.
func removeBaseOS(t *testing.T) []byte {
	t.Helper()
	return fixtures.DeriveSQLite(t, "rpm/claircore_dnf4_history.sqlite",
		`INSERT INTO trans (id, dt_begin, releasever, user_id, state) VALUES (3, 0, '9', 0, 1)`,
		`INSERT INTO trans_item (trans_id, item_id, repo_id, action, reason, state)
			SELECT 3, item_id, repo_id, 8, 2, 1 FROM trans_item WHERE repo_id = 2`)
}

// TestDNF checks which source a layer's repositories come from: its content
// manifests, unless none can be read or one says from_dnf_hint; then its
// dnf history (dnf5's over dnf4's), one repository per repoid of the
// installed packages.
func TestDNF(t *testing.T) {
	const (
		cm  = "root/buildinfo/content_manifests/a.json"
		cm2 = "usr/share/buildinfo/content-sets.json"
	)
	plain := []byte(`{"content_sets": ["content-set-1", "content-set-2"]}`)
	hint := []byte(`{"metadata": {"icm_version": 1}, "from_dnf_hint": true, "content_sets": ["ubi-9-appstream-rpms"]}`)
	d4 := fixture(t, "claircore_dnf4_history.sqlite")
	d5 := fixture(t, "claircore_dnf5_transaction_history.sqlite")
	f := scannertest.File
	// Repositories are written "key name"; Warns are what each warning
	// names.
	sets := []string{rhel.ContentSetKey + " content-set-1", rhel.ContentSetKey + " content-set-2"}
	rhel9 := []string{rhel.DNFRepoKey + " " + appstream, rhel.DNFRepoKey + " " + baseos}
	fedora42 := []string{rhel.DNFRepoKey + " " + fedora}
	scannertest.CheckRepositoryScans(t, Scanner{}, []scannertest.RepositoryScan{
		{Name: "manifest and history: the manifest", Files: []scanner.File{f(cm, plain), f(dnf.DNF4Path, d4)}, Want: sets},
		// The history is not read then: a corrupt one is not a warning.
		{Name: "manifest and corrupt history", Files: []scanner.File{f(cm, plain), f(dnf.DNF4Path, []byte("junk"))}, Want: sets},
		{Name: "no manifest: dnf4", Files: []scanner.File{f(dnf.DNF4Path, d4)}, Want: rhel9},
		{Name: "no manifest: dnf5", Files: []scanner.File{f(dnf.DNF5Path, d5)}, Want: fedora42},
		{Name: "no manifest: both, dnf5's", Files: []scanner.File{f(dnf.DNF4Path, d4), f(dnf.DNF5Path, d5)}, Want: fedora42},
		{Name: "from_dnf_hint", Files: []scanner.File{f(cm2, hint), f(dnf.DNF4Path, d4)}, Want: rhel9},
		{Name: "from_dnf_hint in one of two", Files: []scanner.File{f(cm, plain), f(cm2, hint), f(dnf.DNF4Path, d4)}, Want: rhel9},
		{Name: "from_dnf_hint without a history", Files: []scanner.File{f(cm2, hint)}},
		{Name: "unreadable manifest", Files: []scanner.File{f(cm, []byte("File replaced by RapidFort")), f(dnf.DNF4Path, d4)}, Want: rhel9, Warns: []string{cm}},
		{Name: "removed packages' repository", Files: []scanner.File{f(dnf.DNF4Path, removeBaseOS(t))}, Want: []string{rhel.DNFRepoKey + " " + appstream}},
		{Name: "corrupt history", Files: []scanner.File{f(dnf.DNF4Path, d4[:len(d4)/3])}, Warns: []string{dnf.DNF4Path}},
		{Name: "not a history", Files: []scanner.File{f(cm2, hint), f(dnf.DNF5Path, []byte("hello"))}, Warns: []string{dnf.DNF5Path}},
		{Name: "nothing"},
	}, func(t *testing.T, r *report.Repository) string {
		if r.URI != "" || r.CPE != "" {
			t.Errorf("repository %+v", r)
		}
		return r.Key + " " + r.Name
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Scanner{}).Scan(ctx, []scanner.File{f(dnf.DNF4Path, d4)}); err == nil {
		t.Error("canceled: no error")
	}
}
