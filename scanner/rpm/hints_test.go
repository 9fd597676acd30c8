package rpm

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/dnf"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// Fixtures: knqyf263/go-rpmdb's CBL-Mariner 2.0 rpmdb.sqlite (MIT), and
// quay/claircore's dnf history databases (Apache-2.0),
// internal/dnf/testdata/dnf4/var/lib/dnf/history.sqlite and
// internal/dnf/testdata/dnf5/usr/lib/sysimage/libdnf5/
// transaction_history.sqlite (testdata/fixtures/rpm, SOURCES.md). The
// histories record a RHEL 9 and a Fedora 42 image, none of whose packages
// is in the Mariner database: the tests add transactions that install some
// of its packages (scanner/internal/dnf tests the history rules).
const (
	dnf4History = "claircore_dnf4_history.sqlite"
	dnf5History = "claircore_dnf5_transaction_history.sqlite"
)

// history copies a history fixture, runs stmts on it and returns its bytes.
func history(t *testing.T, fixture string, stmts ...string) []byte {
	t.Helper()
	return fixtures.DeriveSQLite(t, "rpm/"+fixture, stmts...)
}

// dnf4Mariner is the dnf4 fixture with two more transactions: the first
// installs bash, ca-certificates-base (epoch 1) and bzip2 1.0.8-0.cm2,
// and audit with the wrong epoch, the second upgrades bzip2 to the
// Mariner database's 1.0.8-1.cm2 from another repository.
var dnf4Mariner = []string{
	`INSERT INTO repo (id, repoid) VALUES (3, 'mariner-base'), (4, 'mariner-updates')`,
	`INSERT INTO trans (id, dt_begin, releasever, user_id, state) VALUES (3, 0, '2.0', 0, 1), (4, 0, '2.0', 0, 1)`,
	`INSERT INTO item (id, item_type) VALUES (101, 0), (102, 0), (103, 0), (104, 0), (105, 0)`,
	`INSERT INTO rpm (item_id, name, epoch, version, release, arch) VALUES
		(101, 'bash', 0, '5.1.8', '1.cm2', 'x86_64'),
		(102, 'ca-certificates-base', 1, '2.0.0', '1.cm2', 'noarch'),
		(103, 'audit', 1, '3.0.6', '1.cm2', 'x86_64'),
		(104, 'bzip2', 0, '1.0.8', '0.cm2', 'x86_64'),
		(105, 'bzip2', 0, '1.0.8', '1.cm2', 'x86_64')`,
	`INSERT INTO trans_item (trans_id, item_id, repo_id, action, reason, state) VALUES
		(3, 101, 3, 1, 2, 1), (3, 102, 3, 1, 2, 1), (3, 103, 3, 1, 2, 1), (3, 104, 3, 1, 2, 1),
		(4, 105, 4, 6, 2, 1), (4, 104, 3, 7, 2, 1)`,
}

// dnf5Mariner is the dnf5 fixture with a transaction that installs bash.
var dnf5Mariner = []string{
	`INSERT INTO repo (id, repoid) VALUES (2, 'mariner-dnf5')`,
	`INSERT INTO trans (id, dt_begin, releasever, user_id, state_id) VALUES (2, 0, '2.0', 0, 2)`,
	`INSERT INTO item (id) VALUES (1001)`,
	`INSERT INTO rpm (item_id, name_id, epoch, version, release, arch_id) VALUES
		(1001, (SELECT id FROM pkg_name WHERE name = 'bash'), 0, '5.1.8', '1.cm2', (SELECT id FROM arch WHERE name = 'x86_64'))`,
	`INSERT INTO trans_item (trans_id, item_id, repo_id, action_id, reason_id, state_id) VALUES
		(2, 1001, 2, (SELECT id FROM trans_item_action WHERE name = 'Install'), 2, 2)`,
}

// hintCase is a case of TestDNFHints: the files scanned, and the hints,
// package count and warning expected.
type hintCase struct {
	name  string
	files []scanner.File
	hints map[string]string // package name: hint; the others have none
	count int
	warn  string
}

// hintsDBPath is where the Mariner database is placed.
const hintsDBPath = "var/lib/rpm/rpmdb.sqlite"

// hintCases are the cases of TestDNFHints; db is the Mariner database.
func hintCases(t *testing.T, db scanner.File) []hintCase {
	d4 := history(t, dnf4History, dnf4Mariner...)
	d5 := history(t, dnf5History, dnf5Mariner...)
	fixture4 := scannertest.ReadFixture(t, "rpm/"+dnf4History)
	return []hintCase{
		{
			name:  "dnf4",
			files: []scanner.File{db, scannertest.File(dnf.DNF4Path, d4)},
			hints: map[string]string{
				"bash":                 "repoid=mariner-base",
				"ca-certificates-base": "repoid=mariner-base",
				"bzip2":                "repoid=mariner-updates",
			},
			count: 129,
		},
		{
			name:  "dnf5",
			files: []scanner.File{scannertest.File(dnf.DNF5Path, d5), db},
			hints: map[string]string{"bash": "repoid=mariner-dnf5"},
			count: 129,
		},
		{
			name:  "both: dnf5's wins",
			files: []scanner.File{db, scannertest.File(dnf.DNF4Path, d4), scannertest.File(dnf.DNF5Path, d5)},
			hints: map[string]string{"bash": "repoid=mariner-dnf5"},
			count: 129,
		},
		{
			name:  "a history of other packages",
			files: []scanner.File{db, scannertest.File(dnf.DNF4Path, fixture4)},
			count: 129,
		},
		{
			name:  "a corrupt history",
			files: []scanner.File{db, scannertest.File(dnf.DNF4Path, fixture4[:len(fixture4)/3])},
			count: 129,
			warn:  "dnf history " + dnf.DNF4Path,
		},
		{
			name:  "not a history",
			files: []scanner.File{db, scannertest.File(dnf.DNF5Path, []byte("hello"))},
			count: 129,
			warn:  "dnf history " + dnf.DNF5Path + ": not a dnf history database",
		},
		{
			name:  "a history without a database",
			files: []scanner.File{scannertest.File(dnf.DNF4Path, d4), scannertest.File(dnf.DNF5Path, []byte("hello"))},
		},
	}
}

// TestDNFHints scans the Mariner database with dnf histories beside it:
// exactly the packages the history records (same name, epoch, version,
// release and arch) get repoid hints, their source packages none; a history
// that cannot be read is a warning, and no package database.
func TestDNFHints(t *testing.T) {
	db := scannertest.FromDisk(t, hintsDBPath, fixtures.Path(t, "rpm/"+walFixture))
	tests := hintCases(t, db)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Scanner{}.Scan(context.Background(), tt.files)
			if err != nil {
				t.Fatal(err)
			}
			checkHints(t, res, tt)
		})
	}
	checkHintsChangeNothing(t, db, tests[0].files)

	// A canceled scan fails rather than warning about the history.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Scanner{}).Scan(ctx, tests[0].files); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("canceled: %v", err)
	}
}

// checkHints checks the packages found, their hints and the warnings
// against tt.
func checkHints(t *testing.T, res *scanner.Result, tt hintCase) {
	t.Helper()
	if len(res.Packages) != tt.count {
		t.Errorf("%d packages, want %d", len(res.Packages), tt.count)
	}
	got := map[string]string{}
	for _, p := range res.Packages {
		if p.RepositoryHint != "" {
			got[p.Name] = p.RepositoryHint
		}
		if p.Source != nil && p.Source.RepositoryHint != "" {
			t.Errorf("%s: source package hint %q", p.Name, p.Source.RepositoryHint)
		}
		if p.PackageDB != hintsDBPath {
			t.Errorf("%s: PackageDB %q", p.Name, p.PackageDB)
		}
	}
	if !maps.Equal(got, tt.hints) {
		t.Errorf("hints %q, want %q", got, tt.hints)
	}
	for name, h := range got {
		if rhel.Repoid(h) == "" {
			t.Errorf("%s: hint %q names no repoid", name, h)
		}
	}
	switch {
	case tt.warn == "" && len(res.Warnings) > 0:
		t.Errorf("warnings %q", res.Warnings)
	case tt.warn != "" && (len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], tt.warn)):
		t.Errorf("warnings %q, want one saying %q", res.Warnings, tt.warn)
	}
}

// checkHintsChangeNothing checks that the hints found in files do not
// change what is found in db otherwise.
func checkHintsChangeNothing(t *testing.T, db scanner.File, files []scanner.File) {
	t.Helper()
	plain, err := Scanner{}.Scan(context.Background(), []scanner.File{db})
	if err != nil {
		t.Fatal(err)
	}
	hinted, err := Scanner{}.Scan(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range hinted.Packages {
		q := *p
		q.RepositoryHint = ""
		if q.Source != nil && plain.Packages[i].Source != nil && *q.Source != *plain.Packages[i].Source {
			t.Errorf("%s: source %+v, without the history %+v", p.Name, q.Source, plain.Packages[i].Source)
		}
		q.Source = plain.Packages[i].Source
		if q != *plain.Packages[i] {
			t.Errorf("%s: %+v, without the history %+v", p.Name, q, *plain.Packages[i])
		}
	}
	if !slices.Equal(hinted.OwnedFiles, plain.OwnedFiles) {
		t.Error("owned files differ with the history")
	}
}
