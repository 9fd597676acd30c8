package dnf

import (
	"bufio"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// Fixtures (testdata/fixtures/rpm; SOURCES.md): quay/claircore's dnf history
// test databases (Apache-2.0), internal/dnf/testdata/dnf4/var/lib/dnf/
// history.sqlite (a RHEL 9 image: 55 packages from two repositories in two
// transactions) and internal/dnf/testdata/dnf5/usr/lib/sysimage/libdnf5/
// transaction_history.sqlite (Fedora 42: 123 packages from one repository).
const (
	dnf4Fixture = "rpm/claircore_dnf4_history.sqlite"
	dnf5Fixture = "rpm/claircore_dnf5_transaction_history.sqlite"
	appstream   = "rhel-9-for-x86_64-appstream-rpms"
	baseos      = "rhel-9-for-x86_64-baseos-rpms"
	fedora      = "aea2214b263845539cc9b774ac8dd4c7"
)

// golden reads testdata/NAME.tsv: every package of a fixture with its
// repoid, listed with the sqlite3 CLI (the command is in the file's header;
// the CLI is not needed to run the tests). Both fixtures only install, so
// the plain join the CLI ran is the expected answer.
func golden(t *testing.T, name string) map[Key]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[Key]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		c := strings.Split(l, "\t")
		if len(c) != 6 {
			t.Fatalf("%s: row %q", name, l)
		}
		e, err := strconv.Atoi(c[1])
		if err != nil {
			t.Fatal(err)
		}
		out[Key{Name: c[0], Epoch: e, Version: c[2], Release: c[3], Arch: c[4]}] = c[5]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readBytes(t *testing.T, path string, data []byte) (*History, error) {
	t.Helper()
	return Read(context.Background(), scannertest.File(path, data))
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	return scannertest.ReadFixture(t, name)
}

// TestFixtures reads both fixtures, each at its own path and at the other's
// (the schema, not the path, tells dnf4 from dnf5), and compares every
// package's repoid with the golden listing.
func TestFixtures(t *testing.T) {
	tests := []struct {
		fixture, golden string
		count           int
		installed       []string
	}{
		{dnf4Fixture, "dnf4", 55, []string{appstream, baseos}},
		{dnf5Fixture, "dnf5", 123, []string{fedora}},
	}
	for _, tt := range tests {
		want := golden(t, tt.golden)
		if len(want) != tt.count {
			t.Fatalf("%s: golden lists %d packages, want %d", tt.golden, len(want), tt.count)
		}
		for _, p := range []string{DNF4Path, DNF5Path} {
			t.Run(tt.golden+"@"+p, func(t *testing.T) {
				h, err := readBytes(t, p, fixture(t, tt.fixture))
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(h.Repoids, want) {
					for k, v := range want {
						if h.Repoids[k] != v {
							t.Errorf("%+v: repoid %q, want %q", k, h.Repoids[k], v)
						}
					}
					t.Fatalf("%d repoids, want %d", len(h.Repoids), len(want))
				}
				if !slices.Equal(h.Installed, tt.installed) {
					t.Errorf("Installed = %q, want %q", h.Installed, tt.installed)
				}
			})
		}
	}
	// Spot checks by hand, epochs included (bind-utils 32:9.16.23,
	// tar 2:1.35).
	h, err := readBytes(t, DNF4Path, fixture(t, dnf4Fixture))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Repoids[Key{"bind-utils", 32, "9.16.23", "24.el9_5", "x86_64"}]; got != appstream {
		t.Errorf("bind-utils: %q", got)
	}
	if got := h.Repoids[Key{"bind-utils", 0, "9.16.23", "24.el9_5", "x86_64"}]; got != "" {
		t.Errorf("bind-utils without its epoch: %q", got)
	}
	h, err = readBytes(t, DNF5Path, fixture(t, dnf5Fixture))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Repoids[Key{"tar", 2, "1.35", "5.fc42", "x86_64"}]; got != fedora {
		t.Errorf("tar: %q", got)
	}
}

// dnf4 and dnf5 statements that add a transaction, a repository, a package
// and a trans_item to the fixtures.
func trans4(id int) string {
	return "INSERT INTO trans (id, dt_begin, releasever, user_id, state) VALUES (" + strconv.Itoa(id) + ", 0, '9', 0, 1)"
}
func repo(id int, name string) string {
	return "INSERT INTO repo (id, repoid) VALUES (" + strconv.Itoa(id) + ", '" + name + "')"
}
func rpm4(item int, name, evr string) string {
	e, vr, _ := strings.Cut(evr, ":")
	v, r, _ := strings.Cut(vr, "-")
	i := strconv.Itoa(item)
	return "INSERT INTO item (id, item_type) VALUES (" + i + ", 0); INSERT INTO rpm (item_id, name, epoch, version, release, arch) VALUES (" +
		i + ", '" + name + "', " + e + ", '" + v + "', '" + r + "', 'x86_64')"
}

// item4 is the item id of a fixture's package, by name.
func item4(name string) string { return "(SELECT item_id FROM rpm WHERE name = '" + name + "')" }

func ti4(trans int, item string, repo string, action int) string {
	return "INSERT INTO trans_item (trans_id, item_id, repo_id, action, reason, state) VALUES (" +
		strconv.Itoa(trans) + ", " + item + ", " + repo + ", " + strconv.Itoa(action) + ", 2, 1)"
}

func trans5(id int) string {
	return "INSERT INTO trans (id, dt_begin, releasever, user_id, state_id) VALUES (" + strconv.Itoa(id) + ", 0, '42', 0, 2)"
}
func rpm5(item int, name, evr string) string {
	e, vr, _ := strings.Cut(evr, ":")
	v, r, _ := strings.Cut(vr, "-")
	i := strconv.Itoa(item)
	return "INSERT OR IGNORE INTO pkg_name (name) VALUES ('" + name + "'); INSERT INTO item (id) VALUES (" + i + "); " +
		"INSERT INTO rpm (item_id, name_id, epoch, version, release, arch_id) VALUES (" + i +
		", (SELECT id FROM pkg_name WHERE name = '" + name + "'), " + e + ", '" + v + "', '" + r + "', (SELECT id FROM arch WHERE name = 'x86_64'))"
}
func item5(name string) string {
	return "(SELECT item_id FROM rpm WHERE name_id = (SELECT id FROM pkg_name WHERE name = '" + name + "'))"
}
func ti5(trans int, item string, repo string, action string) string {
	return "INSERT INTO trans_item (trans_id, item_id, repo_id, action_id, reason_id, state_id) VALUES (" +
		strconv.Itoa(trans) + ", " + item + ", " + repo + ", (SELECT id FROM trans_item_action WHERE name = '" + action + "'), 2, 2)"
}

func key(name, evr string) Key {
	e, vr, _ := strings.Cut(evr, ":")
	v, r, _ := strings.Cut(vr, "-")
	n, _ := strconv.Atoi(e)
	return Key{Name: name, Epoch: n, Version: v, Release: r, Arch: "x86_64"}
}

// ruleCase is a case of TestRules.
type ruleCase struct {
	name      string
	fixture   string
	stmts     []string
	repoids   map[Key]string // "" for a package that must have none
	installed []string
}

// ruleCases are the cases of TestRules.
var ruleCases = []ruleCase{
	{
		name:    "dnf4 upgrade from another repository",
		fixture: dnf4Fixture,
		stmts: []string{trans4(3), repo(3, "test-updates"), rpm4(100, "apr", "0:1.7.0-13.el9"),
			ti4(3, "100", "3", 6), ti4(3, item4("apr"), "1", 7)},
		repoids: map[Key]string{
			key("apr", "0:1.7.0-13.el9"):   "test-updates",
			key("apr", "0:1.7.0-12.el9_3"): appstream, // upgraded away: its install row
		},
		installed: []string{appstream, baseos, "test-updates"},
	},
	{
		name:    "dnf4 upgrade away from the only package of a repository",
		fixture: dnf4Fixture,
		stmts: []string{trans4(3), repo(3, "test-old"), rpm4(100, "old", "0:1-1"),
			ti4(3, "100", "3", 1), trans4(4), rpm4(101, "old", "0:2-1"), ti4(4, "101", "1", 6), ti4(4, "100", "3", 7)},
		repoids:   map[Key]string{key("old", "0:1-1"): "test-old", key("old", "0:2-1"): appstream},
		installed: []string{appstream, baseos},
	},
	{
		name:    "dnf4 removed package",
		fixture: dnf4Fixture,
		stmts: []string{trans4(3), repo(3, "test-removed"), rpm4(100, "gone", "1:1-1"),
			ti4(3, "100", "3", 1), trans4(4), ti4(4, "100", "3", 8)},
		repoids:   map[Key]string{key("gone", "1:1-1"): "test-removed"}, // Clair's rule: the latest row that is not a removal
		installed: []string{appstream, baseos},
	},
	{
		name:    "dnf4 removed then installed again",
		fixture: dnf4Fixture,
		stmts: []string{trans4(3), repo(3, "test-back"), ti4(3, item4("yajl"), "1", 8),
			trans4(4), ti4(4, item4("yajl"), "3", 1)},
		repoids:   map[Key]string{key("yajl", "0:2.1.0-22.el9"): "test-back"},
		installed: []string{appstream, baseos, "test-back"},
	},
	{
		name:    "dnf4 reinstall, the replaced row last",
		fixture: dnf4Fixture,
		stmts: []string{trans4(3), repo(3, "test-reinstall"),
			ti4(3, item4("yajl"), "3", 9), ti4(3, item4("yajl"), "1", 10)},
		repoids:   map[Key]string{key("yajl", "0:2.1.0-22.el9"): "test-reinstall"},
		installed: []string{appstream, baseos, "test-reinstall"},
	},
	{
		name:    "dnf4 only a replaced row",
		fixture: dnf4Fixture,
		stmts: []string{trans4(3), repo(3, "@System"), rpm4(100, "before", "0:1-1"),
			rpm4(101, "before", "0:2-1"), ti4(3, "101", "1", 6), ti4(3, "100", "3", 7)},
		repoids:   map[Key]string{key("before", "0:1-1"): "@System", key("before", "0:2-1"): appstream},
		installed: []string{appstream, baseos},
	},
	{
		name:    "dnf4 row without a repository",
		fixture: dnf4Fixture,
		stmts: []string{trans4(3), rpm4(100, "norepo", "0:1-1"), ti4(3, "100", "NULL", 1),
			rpm4(101, "badrepo", "0:1-1"), ti4(3, "101", "99", 1)},
		repoids:   map[Key]string{key("norepo", "0:1-1"): "", key("badrepo", "0:1-1"): ""},
		installed: []string{appstream, baseos},
	},
	{
		name:    "dnf5 upgrade",
		fixture: dnf5Fixture,
		stmts: []string{trans5(2), repo(2, "updates"), rpm5(1000, "bash", "0:5.2.37-2.fc42"),
			ti5(2, "1000", "2", "Upgrade"), ti5(2, item5("bash"), "1", "Replaced")},
		repoids: map[Key]string{
			key("bash", "0:5.2.37-2.fc42"): "updates",
			key("bash", "0:5.2.37-1.fc42"): fedora,
		},
		installed: []string{fedora, "updates"},
	},
	{
		name:    "dnf5 reinstall, the replaced row last",
		fixture: dnf5Fixture,
		stmts: []string{trans5(2), repo(2, "test-reinstall"),
			ti5(2, item5("tar"), "2", "Reinstall"), ti5(2, item5("tar"), "1", "Replaced")},
		repoids:   map[Key]string{key("tar", "2:1.35-5.fc42"): "test-reinstall"},
		installed: []string{fedora, "test-reinstall"},
	},
	{
		name:    "dnf5 removed package",
		fixture: dnf5Fixture,
		stmts: []string{trans5(2), repo(2, "test-removed"), rpm5(1000, "extra", "0:1-1"),
			ti5(2, "1000", "2", "Install"), trans5(3), ti5(3, "1000", "2", "Remove")},
		repoids:   map[Key]string{key("extra", "0:1-1"): "test-removed"},
		installed: []string{fedora},
	},
	{
		name:      "dnf5 every package removed",
		fixture:   dnf5Fixture,
		stmts:     []string{trans5(2), "INSERT INTO trans_item (trans_id, item_id, repo_id, action_id, reason_id, state_id) SELECT 2, item_id, 1, 5, 2, 2 FROM rpm"},
		repoids:   map[Key]string{key("bash", "0:5.2.37-1.fc42"): fedora},
		installed: nil,
	},
}

// TestRules adds transactions to the fixtures and checks which repoid each
// package gets and which repoids count as installed. dnf4 actions: 1
// install, 6 upgrade, 7 upgraded, 8 remove, 9 reinstall, 10 reinstalled.
func TestRules(t *testing.T) {
	tests := ruleCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := DNF4Path
			if tt.fixture == dnf5Fixture {
				path = DNF5Path
			}
			h, err := readBytes(t, path, fixtures.DeriveSQLite(t, tt.fixture, tt.stmts...))
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.repoids {
				if got := h.Repoids[k]; got != want {
					t.Errorf("%+v: repoid %q, want %q", k, got, want)
				}
			}
			if !slices.Equal(h.Installed, tt.installed) {
				t.Errorf("Installed = %q, want %q", h.Installed, tt.installed)
			}
		})
	}
}

func TestPickIsHistory(t *testing.T) {
	d4 := scannertest.File(DNF4Path, nil)
	d5 := scannertest.File(DNF5Path, nil)
	other := scannertest.File("var/lib/rpm/rpmdb.sqlite", nil)
	tests := []struct {
		files []scanner.File
		want  scanner.File
	}{
		{nil, nil},
		{[]scanner.File{other}, nil},
		{[]scanner.File{other, d4}, d4},
		{[]scanner.File{d4, d5}, d5},
		{[]scanner.File{d5, d4}, d5},
	}
	for i, tt := range tests {
		if got := Pick(tt.files); got != tt.want {
			t.Errorf("case %d: Pick = %v, want %v", i, got, tt.want)
		}
	}
	for p, want := range map[string]bool{
		DNF4Path: true, DNF5Path: true,
		"var/lib/dnf/history.sqlite-wal":                        false,
		"/var/lib/dnf/history.sqlite":                           false,
		"usr/lib/sysimage/libdnf5/packages.toml":                false,
		"x/usr/lib/sysimage/libdnf5/transaction_history.sqlite": false,
	} {
		if IsHistory(p) != want {
			t.Errorf("IsHistory(%q) = %v", p, !want)
		}
	}
}

// TestBadInput: what is not a history database, or a corrupt one, is an
// error naming the file and saying what is wrong, never a panic.
func TestBadInput(t *testing.T) {
	d4 := fixture(t, dnf4Fixture)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no SQLite header"},
		{"text", []byte("hello, world\n"), "no SQLite header"},
		{"header only", d4[:100], "not a dnf history database"},
		{"an rpm database", fixture(t, "rpm/claircore_no_packages.sqlite"), "no trans_item table"},
		{"an rpmdb.sqlite", fixture(t, "rpm/preflight_sqlite_rpmdb.sqlite"), "no trans_item table"},
		{"no rpm table", fixtures.DeriveSQLite(t, dnf4Fixture, "DROP TABLE rpm"), "dnf4 schema: no rpm table"},
		{"rpm a view", fixtures.DeriveSQLite(t, dnf4Fixture, "ALTER TABLE rpm RENAME TO rpm2", "CREATE VIEW rpm AS SELECT * FROM rpm2"), "dnf4 schema: no rpm table"},
		{"no repoid column", fixtures.DeriveSQLite(t, dnf4Fixture, "ALTER TABLE repo RENAME COLUMN repoid TO r"), "table repo has no column repoid"},
		{"generated column", fixtures.DeriveSQLite(t, dnf4Fixture,
			"ALTER TABLE repo RENAME TO repo2",
			"CREATE TABLE repo (id INTEGER PRIMARY KEY, r TEXT, repoid TEXT GENERATED ALWAYS AS (r || 'x'))",
		), "generated"},
		{"dnf5 without pkg_name", fixtures.DeriveSQLite(t, dnf5Fixture, "DROP TABLE pkg_name"), "dnf5 schema: no pkg_name table"},
		{"text epoch", fixtures.DeriveSQLite(t, dnf4Fixture, "UPDATE rpm SET epoch = 'x' WHERE name = 'apr'"), "epoch is a string"},
		{"NULL version", fixtures.DeriveSQLite(t, dnf4Fixture, unconstrained("rpm", "UPDATE rpm SET version = NULL WHERE name = 'apr'")...), "version is NULL"},
		{"long release", fixtures.DeriveSQLite(t, dnf4Fixture, "UPDATE rpm SET release = printf('%.5000c', 'x') WHERE name = 'apr'"), "more than 4096"},
		{"negative epoch", fixtures.DeriveSQLite(t, dnf4Fixture, "UPDATE rpm SET epoch = -1 WHERE name = 'apr'"), "epoch -1 out of range"},
		{"repoid not UTF-8", fixtures.DeriveSQLite(t, dnf4Fixture, "UPDATE repo SET repoid = CAST(x'ff' AS TEXT) WHERE id = 1"), "not valid UTF-8"},
		{"dangling name_id", fixtures.DeriveSQLite(t, dnf5Fixture, "UPDATE rpm SET name_id = 9999 WHERE item_id = 1"), "name_id 9999 refers to no row"},
		{"NULL action", fixtures.DeriveSQLite(t, dnf4Fixture, unconstrained("trans_item", "UPDATE trans_item SET action = NULL WHERE id = 1")...), "action is NULL"},
	}
	for _, frac := range []int{2, 3, 10} {
		tests = append(tests, struct {
			name string
			data []byte
			want string
		}{"cut to 1/" + strconv.Itoa(frac), d4[:len(d4)/frac], ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := readBytes(t, DNF4Path, tt.data)
			if err == nil {
				t.Fatalf("no error: %+v", h)
			}
			if !strings.Contains(err.Error(), DNF4Path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name the file and say %q", err, tt.want)
			}
		})
	}
}

// unconstrained returns statements that copy table without its constraints
// (CREATE TABLE AS keeps none), then stmt.
func unconstrained(table, stmt string) []string {
	return []string{
		"CREATE TABLE loose AS SELECT * FROM " + table,
		"DROP TABLE " + table,
		"ALTER TABLE loose RENAME TO " + table,
		stmt,
	}
}

func TestLimits(t *testing.T) {
	big := scannertest.FileFunc(DNF4Path, MaxFileSize+1, func() (io.ReadCloser, error) {
		t.Error("Open called on a file over the limit")
		return nil, errors.New("unreachable")
	})
	if _, err := Read(context.Background(), big); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("oversized: %v", err)
	}
	// A file longer than it says.
	liar := scannertest.FileFunc(DNF4Path, 10, func() (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(zeros{}, MaxFileSize+1)), nil
	})
	if _, err := Read(context.Background(), liar); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("longer than its size: %v", err)
	}
	boom := errors.New("boom")
	broken := scannertest.FileFunc(DNF4Path, 10, func() (io.ReadCloser, error) { return nil, boom })
	if _, err := Read(context.Background(), broken); !errors.Is(err, boom) {
		t.Errorf("open error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Read(ctx, scannertest.File(DNF4Path, fixture(t, dnf4Fixture))); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestTempFiles: Read leaves nothing behind in the temporary directory.
func TestTempFiles(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	if _, err := readBytes(t, DNF4Path, fixture(t, dnf4Fixture)); err != nil {
		t.Fatal(err)
	}
	if _, err := readBytes(t, DNF4Path, []byte("junk")); err == nil {
		t.Fatal("no error")
	}
	left, err := os.ReadDir(dir)
	if err != nil || len(left) != 0 {
		t.Errorf("left in TMPDIR: %v, %v", left, err)
	}
}

// BenchmarkRead reads claircore's dnf4 and dnf5 history fixtures (116 and
// 136 KiB): what each of the two scanners that use a layer's history (rpm,
// rhel-content-manifest) pays for it.
func BenchmarkRead(b *testing.B) {
	for _, name := range []string{dnf4Fixture, dnf5Fixture} {
		path := DNF4Path
		if name == dnf5Fixture {
			path = DNF5Path
		}
		f := scannertest.File(path, fixture(b, name))
		b.Run(filepath.Base(name), func(b *testing.B) {
			for b.Loop() {
				if _, err := Read(context.Background(), f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
