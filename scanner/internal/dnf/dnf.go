// Package dnf reads dnf's history database, which records the repository
// (repoid) every package dnf installed came from: dnf4's
// var/lib/dnf/history.sqlite and dnf5's
// usr/lib/sysimage/libdnf5/transaction_history.sqlite. Red Hat images carry
// it, and the repoid names the content set a package was installed from.
//
// The database is an SQLite file of the layer. It is copied into a private
// temporary directory (SQLite may write beside the file it opens, and the
// layer's spool must not change) and opened read-only, immutable and
// query-only. Each table is read whole with a plain SELECT, row count and
// string sizes bounded, and the history is worked out in Go: no join, sort
// or grouping of a hostile file's rows inside SQLite, whose time and memory
// a crafted file could blow up.
package dnf

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
)

// The history databases' paths in a layer.
const (
	// DNF4Path is dnf4's (libdnf's) history database.
	DNF4Path = "var/lib/dnf/history.sqlite"
	// DNF5Path is dnf5's transaction history database.
	DNF5Path = "usr/lib/sysimage/libdnf5/transaction_history.sqlite"
)

// Limits on a history database. A container image's history holds a few
// hundred rows; a server's, years of updates, some hundred thousand.
const (
	// MaxFileSize is the largest history database Read reads.
	MaxFileSize = 256 << 20
	// MaxRows is the most rows Read takes from any one table.
	MaxRows = 1 << 20
	// MaxValueLen is the longest string Read takes from a table (a
	// package name, version, release, arch or repoid).
	MaxValueLen = 4 << 10
	// maxStringBytes bounds the strings Read keeps in all.
	maxStringBytes = 64 << 20
)

// ErrNotHistory is wrapped when a file is not a dnf history database: not
// SQLite, or without the tables and columns Read needs.
var ErrNotHistory = errors.New("not a dnf history database")

// IsHistory reports whether p (a clean, relative layer path) is one of the
// history databases' paths.
func IsHistory(p string) bool { return p == DNF4Path || p == DNF5Path }

// Pick returns the history database of a layer among files: dnf5's when
// the layer has both (dnf5 took over from dnf4 and no longer writes dnf4's),
// else the one it has, else nil. Other files are ignored.
func Pick(files []scanner.File) scanner.File {
	var dnf4 scanner.File
	for _, f := range files {
		switch f.Path() {
		case DNF5Path:
			return f
		case DNF4Path:
			dnf4 = f
		}
	}
	return dnf4
}

// Key identifies a package as rpm and dnf both record it. Epoch is 0 when
// the package has none.
type Key struct {
	Name    string
	Epoch   int
	Version string
	Release string
	Arch    string
}

// History is what a history database says about the repositories of
// packages.
//
// The rows of trans_item record, per transaction, what happened to each
// package (NEVRA): an action that removes it (dnf4 action 8, dnf5
// "Remove"), one that records the version being replaced (dnf4 3
// downgraded, 5 obsoleted, 7 upgraded, 10 reinstalled; dnf5 "Replaced"), or
// one that puts or keeps it on the system (install, upgrade, downgrade,
// obsolete, reinstall, reason change), each with the repository of the
// package.
type History struct {
	// Repoids maps each package dnf recorded with a repository, removed
	// since or not (the map is asked about packages rpm says are
	// installed), to the repoid of its latest row that puts or keeps it
	// on the system or, when it has none, of its latest row that is not a
	// removal. Clair takes the latest row that is not a removal outright;
	// the two differ only where a replaced-version row comes last (a
	// reinstall that records the old copy after the new one), for which
	// Clair names the old copy's repository.
	Repoids map[Key]string
	// Installed are the distinct repoids, sorted, of the packages still
	// installed when the history ends: those whose last transaction (the
	// transaction of their latest row) has a row that puts or keeps them
	// on the system. A package removed, upgraded away or obsoleted since
	// does not count.
	Installed []string
}

// Read reads the history database f. The error names the file and says
// what failed: too large, not a history database (ErrNotHistory), corrupt,
// or the context's error.
func Read(ctx context.Context, f scanner.File) (*History, error) {
	h, err := read(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("dnf history %s: %w", f.Path(), err)
	}
	return h, nil
}

func read(ctx context.Context, f scanner.File) (*History, error) {
	if f.Size() > MaxFileSize {
		return nil, fmt.Errorf("size %d bytes exceeds the limit of %d", f.Size(), MaxFileSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "stevedore-dnf-*")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "history.sqlite")
	if err := copyFile(path, f); err != nil {
		return nil, err
	}
	db, err := open(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: opening: %w", ErrNotHistory, err)
	}
	defer conn.Close()
	// SQLite refuses to make a string or blob longer than this: a value
	// from a crafted schema (a column default) cannot grow large.
	if _, err := sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_LENGTH, 1<<20); err != nil {
		return nil, fmt.Errorf("setting limits: %w", err)
	}
	r := &reader{ctx: ctx, conn: conn}
	s, err := r.schema()
	if err != nil {
		return nil, err
	}
	return r.history(s)
}

// copyFile copies at most MaxFileSize bytes of f to a new file at path and
// checks that it starts like an SQLite database.
func copyFile(path string, f scanner.File) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("opening: %w", err)
	}
	defer rc.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("temporary copy: %w", err)
	}
	lr := limitio.NewReader(rc, MaxFileSize)
	n, err := io.Copy(out, lr)
	if cerr := out.Close(); err == nil && cerr != nil {
		return fmt.Errorf("temporary copy: %w", cerr)
	}
	if err != nil {
		if lr.Exceeded {
			return fmt.Errorf("more than %d bytes", MaxFileSize)
		}
		return fmt.Errorf("reading: %w", err)
	}
	// The header is 100 bytes and starts with the magic string.
	head := make([]byte, 16)
	if n >= 100 {
		in, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("temporary copy: %w", err)
		}
		_, err = io.ReadFull(in, head)
		in.Close()
		if err != nil {
			return fmt.Errorf("temporary copy: %w", err)
		}
	}
	if string(head) != "SQLite format 3\x00" {
		return fmt.Errorf("%w: no SQLite header (%d bytes)", ErrNotHistory, n)
	}
	return nil
}

// open opens the database at path read-only and immutable (no journal, no
// WAL, no locks: it is a private copy), query-only, trusting nothing its
// schema defines.
func open(path string) (*sql.DB, error) {
	q := url.Values{
		"mode":      {"ro"},
		"immutable": {"1"},
		"_pragma":   {"query_only(1)", "trusted_schema(0)"},
	}
	dsn := (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// version is a history database's schema.
type version int

const (
	dnf4 version = 4
	dnf5 version = 5
)

// tables lists, per schema, the tables and columns Read needs.
var tables = map[version]map[string][]string{
	dnf4: {
		"trans_item": {"id", "trans_id", "item_id", "repo_id", "action"},
		"rpm":        {"item_id", "name", "epoch", "version", "release", "arch"},
		"repo":       {"id", "repoid"},
	},
	dnf5: {
		"trans_item":        {"id", "trans_id", "item_id", "repo_id", "action_id"},
		"trans_item_action": {"id", "name"},
		"rpm":               {"item_id", "name_id", "epoch", "version", "release", "arch_id"},
		"pkg_name":          {"id", "name"},
		"arch":              {"id", "name"},
		"repo":              {"id", "repoid"},
	},
}

type reader struct {
	ctx   context.Context
	conn  *sql.Conn
	bytes int // string bytes kept so far
}

// schema tells dnf4's schema from dnf5's (trans_item's action column) and
// checks that the tables Read needs are ordinary tables with the columns it
// reads, none of them generated.
func (r *reader) schema() (version, error) {
	rows, err := r.conn.QueryContext(r.ctx, `SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		return 0, fmt.Errorf("%w: reading the schema: %w", ErrNotHistory, err)
	}
	found := map[string]string{} // lower-case name: its SQL
	n := 0
	for rows.Next() {
		var name, stmt string
		if err := rows.Scan(&name, &stmt); err != nil {
			rows.Close()
			return 0, fmt.Errorf("%w: reading the schema: %w", ErrNotHistory, err)
		}
		if n++; n > MaxRows {
			rows.Close()
			return 0, fmt.Errorf("%w: more than %d tables", ErrNotHistory, MaxRows)
		}
		found[strings.ToLower(name)] = stmt
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("%w: reading the schema: %w", ErrNotHistory, err)
	}
	if _, ok := found["trans_item"]; !ok {
		return 0, fmt.Errorf("%w: no trans_item table", ErrNotHistory)
	}
	cols, err := r.columns("trans_item")
	if err != nil {
		return 0, err
	}
	v := dnf4
	if _, ok := cols["action_id"]; ok {
		v = dnf5
	}
	for _, t := range sortedKeys(tables[v]) {
		stmt, ok := found[t]
		if !ok {
			return 0, fmt.Errorf("%w: dnf%d schema: no %s table", ErrNotHistory, v, t)
		}
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(stmt)), "CREATE VIRTUAL") {
			return 0, fmt.Errorf("%w: %s is a virtual table", ErrNotHistory, t)
		}
		cols, err := r.columns(t)
		if err != nil {
			return 0, err
		}
		for _, c := range tables[v][t] {
			hidden, ok := cols[c]
			if !ok {
				return 0, fmt.Errorf("%w: dnf%d schema: table %s has no column %s", ErrNotHistory, v, t, c)
			}
			if hidden != 0 {
				return 0, fmt.Errorf("%w: column %s.%s is hidden or generated", ErrNotHistory, t, c)
			}
		}
	}
	return v, nil
}

// columns returns the columns of table, lower-case, with their "hidden"
// value (0 for an ordinary column).
func (r *reader) columns(table string) (map[string]int, error) {
	rows, err := r.conn.QueryContext(r.ctx, `SELECT name, hidden FROM pragma_table_xinfo(?)`, table)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the columns of %s: %w", ErrNotHistory, table, err)
	}
	defer rows.Close()
	cols := map[string]int{}
	for rows.Next() {
		var name string
		var hidden int
		if err := rows.Scan(&name, &hidden); err != nil {
			return nil, fmt.Errorf("%w: reading the columns of %s: %w", ErrNotHistory, table, err)
		}
		if len(cols) >= MaxRows {
			return nil, fmt.Errorf("%w: table %s has more than %d columns", ErrNotHistory, table, MaxRows)
		}
		cols[strings.ToLower(name)] = hidden
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: reading the columns of %s: %w", ErrNotHistory, table, err)
	}
	return cols, nil
}

// each runs query (a SELECT of one table) and calls fn with each row's
// values, at most MaxRows rows.
func (r *reader) each(table, query string, fn func(vals []any) error) error {
	rows, err := r.conn.QueryContext(r.ctx, query)
	if err != nil {
		return fmt.Errorf("querying %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("querying %s: %w", table, err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if n++; n > MaxRows {
			return fmt.Errorf("table %s has more than %d rows", table, MaxRows)
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("reading %s: %w", table, err)
		}
		if err := fn(vals); err != nil {
			return fmt.Errorf("table %s, row %d: %w", table, n, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", table, err)
	}
	return nil
}

// errCorrupt is wrapped by the errors of values of the wrong type.
var errCorrupt = errors.New("corrupt dnf history database")

// integer returns v as an integer; ok is false for NULL.
func integer(v any, col string) (n int64, ok bool, err error) {
	switch v := v.(type) {
	case nil:
		return 0, false, nil
	case int64:
		return v, true, nil
	}
	return 0, false, fmt.Errorf("%w: %s is a %T, not an integer", errCorrupt, col, v)
}

// text returns v as a string, counting its size against the reader's
// budget.
func (r *reader) text(v any, col string) (string, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	case nil:
		return "", fmt.Errorf("%w: %s is NULL", errCorrupt, col)
	default:
		return "", fmt.Errorf("%w: %s is a %T, not text", errCorrupt, col, v)
	}
	if len(s) > MaxValueLen {
		return "", fmt.Errorf("%w: %s is %d bytes long, more than %d", errCorrupt, col, len(s), MaxValueLen)
	}
	if r.bytes += len(s); r.bytes > maxStringBytes {
		return "", fmt.Errorf("more than %d bytes of strings", maxStringBytes)
	}
	return s, nil
}

// names reads a table of (id, text): repo, pkg_name, arch,
// trans_item_action.
func (r *reader) names(table, col string) (map[int64]string, error) {
	out := map[int64]string{}
	err := r.each(table, `SELECT id, `+col+` FROM `+table, func(v []any) error {
		id, ok, err := integer(v[0], "id")
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: id is NULL", errCorrupt)
		}
		s, err := r.text(v[1], col)
		if err != nil {
			return err
		}
		out[id] = s
		return nil
	})
	return out, err
}

// class is what a trans_item does to its package.
type class int

const (
	classOn       class = iota // puts or keeps the package on the system
	classReplaced              // the version being replaced
	classRemoved               // a removal
)

// item is one row of trans_item.
type item struct {
	id, trans, item int64
	repoid          string
	class           class
}

// history reads the tables the schema v needs and works out the history.
func (r *reader) history(v version) (*History, error) {
	repos, err := r.names("repo", "repoid")
	if err != nil {
		return nil, err
	}
	for id, s := range repos {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return nil, fmt.Errorf("%w: repo %d: repoid %q is not valid UTF-8 text", errCorrupt, id, s)
		}
	}
	var actions map[int64]string
	if v == dnf5 {
		if actions, err = r.names("trans_item_action", "name"); err != nil {
			return nil, err
		}
	}
	pkgs, err := r.packages(v)
	if err != nil {
		return nil, err
	}
	byItem, err := r.items(v, pkgs, repos, actions)
	if err != nil {
		return nil, err
	}
	return resolve(pkgs, byItem), nil
}

// packages reads the rpm table: the packages, by item id.
func (r *reader) packages(v version) (map[int64]Key, error) {
	var nameOf, archOf map[int64]string
	query := `SELECT item_id, name, epoch, version, release, arch FROM rpm`
	if v == dnf5 {
		var err error
		if nameOf, err = r.names("pkg_name", "name"); err != nil {
			return nil, err
		}
		if archOf, err = r.names("arch", "name"); err != nil {
			return nil, err
		}
		query = `SELECT item_id, name_id, epoch, version, release, arch_id FROM rpm`
	}
	pkgs := map[int64]Key{}
	err := r.each("rpm", query, func(vals []any) error {
		id, ok, err := integer(vals[0], "item_id")
		if err != nil || !ok {
			return cmpErr(err, "item_id")
		}
		epoch, ok, err := integer(vals[2], "epoch")
		if err != nil || !ok {
			return cmpErr(err, "epoch")
		}
		if epoch < 0 || epoch > 1<<31-1 {
			return fmt.Errorf("%w: epoch %d out of range", errCorrupt, epoch)
		}
		k := Key{Epoch: int(epoch)}
		if k.Version, err = r.text(vals[3], "version"); err != nil {
			return err
		}
		if k.Release, err = r.text(vals[4], "release"); err != nil {
			return err
		}
		if v == dnf4 {
			if k.Name, err = r.text(vals[1], "name"); err != nil {
				return err
			}
			if k.Arch, err = r.text(vals[5], "arch"); err != nil {
				return err
			}
		} else {
			if k.Name, err = lookup(nameOf, vals[1], "name_id"); err != nil {
				return err
			}
			if k.Arch, err = lookup(archOf, vals[5], "arch_id"); err != nil {
				return err
			}
		}
		pkgs[id] = k
		return nil
	})
	return pkgs, err
}

// items reads the trans_item table: the rows of the packages pkgs, by
// item id, with their repoids (repos) and classes (dnf5's action names in
// actions).
func (r *reader) items(v version, pkgs map[int64]Key, repos, actions map[int64]string) (map[int64][]item, error) {
	query := `SELECT id, trans_id, item_id, repo_id, action FROM trans_item`
	if v == dnf5 {
		query = `SELECT id, trans_id, item_id, repo_id, action_id FROM trans_item`
	}
	byItem := map[int64][]item{}
	err := r.each("trans_item", query, func(vals []any) error {
		var it item
		var ok bool
		var err error
		if it.id, ok, err = integer(vals[0], "id"); err != nil || !ok {
			return cmpErr(err, "id")
		}
		if it.trans, ok, err = integer(vals[1], "trans_id"); err != nil || !ok {
			return cmpErr(err, "trans_id")
		}
		if it.item, ok, err = integer(vals[2], "item_id"); err != nil || !ok {
			return cmpErr(err, "item_id")
		}
		if _, isRPM := pkgs[it.item]; !isRPM {
			return nil // a comps group or environment
		}
		// A row without a known repository keeps its place in the
		// package's history, with no repoid.
		repo, ok, err := integer(vals[3], "repo_id")
		if err != nil {
			return err
		}
		if ok {
			it.repoid = repos[repo]
		}
		action, ok, err := integer(vals[4], "action")
		if err != nil || !ok {
			return cmpErr(err, "action")
		}
		it.class = classify(v, action, actions)
		byItem[it.item] = append(byItem[it.item], it)
		return nil
	})
	return byItem, err
}

// resolve works out the History of the packages pkgs from their rows.
func resolve(pkgs map[int64]Key, byItem map[int64][]item) *History {
	h := &History{Repoids: map[Key]string{}}
	chosen := map[Key]int64{} // the row each Repoids entry comes from
	installed := map[string]bool{}
	for id, rows := range byItem {
		var last, on, notRemoved *item
		for i := range rows {
			it := &rows[i]
			if last == nil || it.id > last.id {
				last = it
			}
			if it.class == classOn && (on == nil || it.id > on.id) {
				on = it
			}
			if it.class != classRemoved && (notRemoved == nil || it.id > notRemoved.id) {
				notRemoved = it
			}
		}
		src := on
		if src == nil {
			src = notRemoved
		}
		if src == nil || src.repoid == "" {
			continue
		}
		// Two items with one NEVRA break dnf's unique constraint: the
		// later row wins, then the smaller repoid, whichever order the
		// map gives them in.
		k := pkgs[id]
		if prev, ok := chosen[k]; !ok || src.id > prev || src.id == prev && src.repoid < h.Repoids[k] {
			h.Repoids[k], chosen[k] = src.repoid, src.id
		}
		for _, it := range rows {
			if it.trans == last.trans && it.class == classOn {
				installed[src.repoid] = true
				break
			}
		}
	}
	for id := range installed {
		h.Installed = append(h.Installed, id)
	}
	slices.Sort(h.Installed)
	return h
}

// classify returns the class of a trans_item action: dnf4's by number
// (libdnf's TransactionItemAction), dnf5's by the name trans_item_action
// gives it.
func classify(v version, action int64, names map[int64]string) class {
	if v == dnf4 {
		switch action {
		case 8: // REMOVE
			return classRemoved
		case 3, 5, 7, 10: // DOWNGRADED, OBSOLETED, UPGRADED, REINSTALLED
			return classReplaced
		}
		return classOn
	}
	switch names[action] {
	case "Remove":
		return classRemoved
	case "Replaced":
		return classReplaced
	}
	return classOn
}

// lookup returns the name an id column (vals's value) refers to.
func lookup(names map[int64]string, v any, col string) (string, error) {
	id, ok, err := integer(v, col)
	if err != nil || !ok {
		return "", cmpErr(err, col)
	}
	s, ok := names[id]
	if !ok {
		return "", fmt.Errorf("%w: %s %d refers to no row", errCorrupt, col, id)
	}
	return s, nil
}

// cmpErr returns err, or the error of a NULL in col when err is nil.
func cmpErr(err error, col string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s is NULL", errCorrupt, col)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
