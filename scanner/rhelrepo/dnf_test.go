package rhelrepo

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
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
	type repo struct{ name, key string }
	sets := []repo{{"content-set-1", rhel.ContentSetKey}, {"content-set-2", rhel.ContentSetKey}}
	rhel9 := []repo{{appstream, rhel.DNFRepoKey}, {baseos, rhel.DNFRepoKey}}
	tests := []struct {
		name  string
		files []scanner.File
		want  []repo
		warn  []string // what each warning names
	}{
		{"manifest and history: the manifest", []scanner.File{f(cm, plain), f(dnf.DNF4Path, d4)}, sets, nil},
		// The history is not read then: a corrupt one is not a warning.
		{"manifest and corrupt history", []scanner.File{f(cm, plain), f(dnf.DNF4Path, []byte("junk"))}, sets, nil},
		{"no manifest: dnf4", []scanner.File{f(dnf.DNF4Path, d4)}, rhel9, nil},
		{"no manifest: dnf5", []scanner.File{f(dnf.DNF5Path, d5)}, []repo{{fedora, rhel.DNFRepoKey}}, nil},
		{"no manifest: both, dnf5's", []scanner.File{f(dnf.DNF4Path, d4), f(dnf.DNF5Path, d5)}, []repo{{fedora, rhel.DNFRepoKey}}, nil},
		{"from_dnf_hint", []scanner.File{f(cm2, hint), f(dnf.DNF4Path, d4)}, rhel9, nil},
		{"from_dnf_hint in one of two", []scanner.File{f(cm, plain), f(cm2, hint), f(dnf.DNF4Path, d4)}, rhel9, nil},
		{"from_dnf_hint without a history", []scanner.File{f(cm2, hint)}, nil, nil},
		{"unreadable manifest", []scanner.File{f(cm, []byte("File replaced by RapidFort")), f(dnf.DNF4Path, d4)}, rhel9, []string{cm}},
		{"removed packages' repository", []scanner.File{f(dnf.DNF4Path, removeBaseOS(t))}, []repo{{appstream, rhel.DNFRepoKey}}, nil},
		{"corrupt history", []scanner.File{f(dnf.DNF4Path, d4[:len(d4)/3])}, nil, []string{dnf.DNF4Path}},
		{"not a history", []scanner.File{f(cm2, hint), f(dnf.DNF5Path, []byte("hello"))}, nil, []string{dnf.DNF5Path}},
		{"nothing", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Scanner{}.Scan(context.Background(), tt.files)
			if err != nil {
				t.Fatal(err)
			}
			var got []repo
			for _, r := range res.Repositories {
				if r.URI != "" || r.CPE != "" {
					t.Errorf("repository %+v", r)
				}
				got = append(got, repo{r.Name, r.Key})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("repositories %v, want %v", got, tt.want)
			}
			if len(res.Warnings) != len(tt.warn) {
				t.Fatalf("warnings %q, want %d", res.Warnings, len(tt.warn))
			}
			for i, w := range tt.warn {
				if !strings.Contains(res.Warnings[i], w) {
					t.Errorf("warning %q does not name %s", res.Warnings[i], w)
				}
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Scanner{}).Scan(ctx, []scanner.File{f(dnf.DNF4Path, d4)}); err == nil {
		t.Error("canceled: no error")
	}
}
