package rpm

import (
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// walFixture is knqyf263/go-rpmdb's CBL-Mariner 2.0 rpmdb.sqlite (MIT;
// testdata/fixtures/rpm, SOURCES.md): 129 packages, in WAL mode as rpm
// leaves it.
const walFixture = "go-rpmdb_cbl-mariner-2.0_rpmdb.sqlite"

// walCase builds, from walFixture, an rpmdb.sqlite and an rpmdb.sqlite-wal
// in which bash has been removed (removeBash): the deletion was committed
// to the log and never checkpointed, so the database file alone still
// lists bash. It returns the files' contents.
func walCase(t *testing.T) (db, wal []byte) {
	return walWith(t, removeBash)
}

// walWith makes change, in one transaction, to a copy of walFixture in WAL
// mode without automatic checkpoints, and copies the database and its log
// while the connection that wrote them is still open (closing it would
// checkpoint the log into the database). It returns the files' contents.
func walWith(t *testing.T, change func(t *testing.T, exec func(q string, args ...any), conn *sql.Conn)) (db, wal []byte) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "rpmdb.sqlite")
	data := scannertest.ReadFixture(t, "rpm/"+walFixture)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sdb, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	ctx := context.Background()
	conn, err := sdb.Conn(ctx) // one connection: the pragmas are per connection
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v", mode, err)
	}
	exec(`PRAGMA wal_autocheckpoint = 0`)
	exec(`BEGIN`)
	change(t, exec, conn)
	exec(`COMMIT`)

	if db, err = os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	if wal, err = os.ReadFile(p + "-wal"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(db, data) {
		t.Fatal("the change reached the database file: it must be in the log only")
	}
	if len(wal) == 0 {
		t.Fatal("empty log")
	}
	return db, wal
}

// removeBash deletes bash's Packages row and its rows in every index table
// (all keyed by hnum), as rpm -e would.
func removeBash(t *testing.T, exec func(q string, args ...any), conn *sql.Conn) {
	ctx := context.Background()
	var hnum int64
	if err := conn.QueryRowContext(ctx, `SELECT hnum FROM Name WHERE key = 'bash'`).Scan(&hnum); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(ctx, `SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c
		WHERE m.type = 'table' AND c.name = 'hnum' AND m.name <> 'Packages'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Close(); err != nil || len(tables) < 10 {
		t.Fatalf("index tables %q, %v", tables, err)
	}
	for _, tb := range tables {
		exec(`DELETE FROM "`+tb+`" WHERE hnum = ?`, hnum)
	}
	exec(`DELETE FROM Packages WHERE hnum = ?`, hnum)
}

// TestWAL scans a database whose last transaction (bash removed) is in its
// write-ahead log only, with rpm -qa on the same two files as the oracle:
// with the log, one package fewer than the fixture, bash; without it, the
// whole fixture. Files are given both in memory and as spooled files
// (Open returns an *os.File), and in both rpm directories.
func TestWAL(t *testing.T) {
	db, wal := walCase(t)
	full, _ := oracle(t, walFixture, "sqlite")
	dir := t.TempDir()
	for name, b := range map[string][]byte{"rpmdb.sqlite": db, "rpmdb.sqlite-wal": wal} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := oracleDir(t, dir, "sqlite")
	if len(full) != 129 || len(want) != 128 {
		t.Fatalf("rpm -qa: %d packages in the fixture, %d with the log; want 129 and 128", len(full), len(want))
	}
	var gone []string
	for _, r := range full {
		if !slices.Contains(want, r) {
			gone = append(gone, r)
		}
	}
	if len(gone) != 1 || !strings.HasPrefix(gone[0], "bash\t0:5.1.8-1.cm2\tx86_64\t") {
		t.Fatalf("rpm -qa: the log removes %q, want bash", gone)
	}

	spooled := func(lp string, b []byte) scanner.File {
		p := filepath.Join(t.TempDir(), filepath.Base(lp))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return scannertest.FileFunc(lp, int64(len(b)), func() (io.ReadCloser, error) { return os.Open(p) })
	}
	for _, dbDir := range dbDirs {
		for _, how := range []struct {
			name string
			file func(string, []byte) scanner.File
		}{{"memory", scannertest.File}, {"spooled", spooled}} {
			t.Run(dbDir+how.name, func(t *testing.T) {
				dbPath := dbDir + "rpmdb.sqlite"
				tests := []struct {
					name  string
					files []scanner.File
					want  []string
				}{
					{"with the log", []scanner.File{how.file(dbPath+"-wal", wal), how.file(dbPath, db)}, want},
					{"without the log", []scanner.File{how.file(dbPath, db)}, full},
					{"the log alone", []scanner.File{how.file(dbPath+"-wal", wal)}, nil},
					// A log of the other directory is not this database's.
					{"another directory's log", []scanner.File{how.file(dbPath, db), how.file(otherDir(dbDir)+"rpmdb.sqlite-wal", wal)}, full},
				}
				for _, tt := range tests {
					res, err := Scanner{}.Scan(context.Background(), tt.files)
					if err != nil {
						t.Fatalf("%s: %v", tt.name, err)
					}
					if got := rows(res.Packages); !slices.Equal(got, tt.want) {
						t.Errorf("%s: %d packages, want %d (rpm -qa)", tt.name, len(got), len(tt.want))
					}
					for _, p := range res.Packages {
						if p.PackageDB != dbPath {
							t.Errorf("%s: %s: PackageDB %q", tt.name, p.Name, p.PackageDB)
						}
					}
					if len(res.Warnings) > 0 {
						t.Errorf("%s: warnings %q", tt.name, res.Warnings)
					}
				}
			})
		}
	}
}

func otherDir(d string) string {
	if d == dbDirs[0] {
		return dbDirs[1]
	}
	return dbDirs[0]
}

// TestBadWAL: a log that is not one, or is cut short, is what SQLite makes
// of it (it ignores a log with a bad header and frames after the last
// valid commit), the same for the scanner as for rpm -qa; a log over the
// size limit is an error naming it.
func TestBadWAL(t *testing.T) {
	db, wal := walCase(t)
	tests := []struct {
		name string
		wal  []byte
	}{
		{"empty", nil},
		{"text", []byte("not a write-ahead log\n")},
		{"header only", wal[:32]},
		{"cut to half", wal[:len(wal)/2]},
		{"bad checksum", func() []byte {
			b := slices.Clone(wal)
			b[len(b)-1] ^= 0xff
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range map[string][]byte{"rpmdb.sqlite": db, "rpmdb.sqlite-wal": tt.wal} {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			want, _ := oracleDir(t, dir, "sqlite")
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{
				scannertest.File("var/lib/rpm/rpmdb.sqlite", db),
				scannertest.File("var/lib/rpm/rpmdb.sqlite-wal", tt.wal),
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := rows(res.Packages); !slices.Equal(got, want) {
				t.Errorf("%d packages, rpm -qa lists %d", len(got), len(want))
			}
		})
	}
	// A header in the log is validated like one in the database: a
	// corrupt one is refused before go-rpmdb reads it.
	db, wal = walWith(t, func(t *testing.T, exec func(string, ...any), _ *sql.Conn) {
		exec(`INSERT INTO Packages (blob) VALUES (x'00000001000000100000003f00000007ffffff0000000010' || zeroblob(16))`)
	})
	_, err := Scanner{}.Scan(context.Background(), []scanner.File{
		scannertest.File("var/lib/rpm/rpmdb.sqlite", db),
		scannertest.File("var/lib/rpm/rpmdb.sqlite-wal", wal),
	})
	if err == nil || !strings.Contains(err.Error(), "var/lib/rpm/rpmdb.sqlite") || !strings.Contains(err.Error(), "SQLite package 130") {
		t.Errorf("corrupt header in the log: %v", err)
	}
	// Without its log, the same database is the fixture.
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("var/lib/rpm/rpmdb.sqlite", db)})
	if err != nil || len(res.Packages) != 129 {
		t.Errorf("without the log: %v", err)
	}

	big := scannertest.FileFunc("var/lib/rpm/rpmdb.sqlite-wal", MaxFileSize+1, func() (io.ReadCloser, error) {
		t.Error("Open called on a log over the limit")
		return nil, io.EOF
	})
	_, err = Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("var/lib/rpm/rpmdb.sqlite", db), big})
	if err == nil || !strings.Contains(err.Error(), "var/lib/rpm/rpmdb.sqlite-wal") || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("oversized log: %v", err)
	}
}
