// Package apk finds the packages installed by apk, Alpine's package manager,
// in lib/apk/db/installed.
package apk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
	"github.com/stevedore-dev/stevedore/scanner/internal/lines"
	"github.com/stevedore-dev/stevedore/scanner/internal/owned"
)

// MaxFileSize is the largest installed database Scan reads.
const MaxFileSize = 64 << 20

// MaxLineLen bounds one line of the installed database, in bytes.
const MaxLineLen = 1 << 20

const installedDB = "lib/apk/db/installed"

// Scanner reports the packages in apk's installed database.
//
// Each package is a binary package with Name (P:), Version (V:), Arch (A:),
// PackageDB "lib/apk/db/installed", PURL pkg:apk/alpine/<name>@<version>
// with an arch qualifier, and a Source: the origin package (o:) at the same
// version, or the package itself when there is no o: line. The PURL
// namespace is always "alpine": the database does not say which apk-based
// distribution wrote it; the coalescer (internal/indexer/coalesce) gives
// the PURL the image's distribution (Wolfi, Chainguard) and a distro
// qualifier.
//
// Result.OwnedFiles lists the files of the packages (R: lines under their
// F: directory) that a language scanner could also report (owned.Relevant):
// the coalescer drops a language package, a Go binary or a runtime read
// from one, as it does for dpkg and rpm.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "apk", version "2", a package scanner.
//
// Version 2 records the files the packages own (Result.OwnedFiles).
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "apk", Version: "2", Kind: scanner.KindPackage}
}

// Match reports whether path is lib/apk/db/installed.
func (Scanner) Match(path string) bool { return path == installedDB }

// Scan parses the matched database and returns its packages in file order.
// A file over MaxFileSize or that Parse rejects is an error naming it.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	dbs, err := limitio.ParseFiles(ctx, "apk", files, parseFile)
	if err != nil {
		return nil, err
	}
	res := &scanner.Result{}
	for _, db := range dbs {
		for _, e := range db.Value {
			res.Packages = append(res.Packages, newPackage(e, db.Path))
		}
		ownedFiles(db.Value, res)
	}
	return res, nil
}

// ownedFiles adds the entries' owned files to res.OwnedFiles (sorted, no
// duplicates, at most owned.MaxFiles).
func ownedFiles(entries []Entry, res *scanner.Result) {
	seen := make(map[string]bool, len(res.OwnedFiles))
	for _, p := range res.OwnedFiles {
		seen[p] = true
	}
	full := false
	for _, e := range entries {
		for _, p := range e.Owned {
			if !seen[p] && len(seen) >= owned.MaxFiles {
				full = true
				break
			}
			seen[p] = true
		}
	}
	if full {
		res.Warnings = append(res.Warnings, fmt.Sprintf("apk: more than %d owned files; the rest are not recorded", owned.MaxFiles))
	}
	res.OwnedFiles = res.OwnedFiles[:0]
	for p := range seen {
		res.OwnedFiles = append(res.OwnedFiles, p)
	}
	slices.Sort(res.OwnedFiles)
}

func parseFile(ctx context.Context, f scanner.File) ([]Entry, error) {
	return limitio.ParseFile("apk", f, MaxFileSize, func(r io.Reader) ([]Entry, error) { return Parse(ctx, r) })
}

func newPackage(e Entry, db string) *report.Package {
	var q packageurl.Qualifiers
	if e.Arch != "" {
		q = packageurl.Qualifiers{{Key: "arch", Value: e.Arch}}
	}
	src := e.Origin
	if src == "" {
		src = e.Name
	}
	return &report.Package{
		Name:      e.Name,
		Version:   e.Version,
		Kind:      report.KindBinary,
		Arch:      e.Arch,
		PackageDB: db,
		PURL:      packageurl.NewPackageURL(packageurl.TypeApk, "alpine", e.Name, e.Version, q, "").ToString(),
		Source: &report.Package{
			Name:    src,
			Version: e.Version,
			Kind:    report.KindSource,
		},
	}
}

// Entry is one package of apk's installed database.
type Entry struct {
	Name    string // P:
	Version string // V:
	Arch    string // A:, "" if absent
	Origin  string // o:, "" if absent
	Line    int    // the line the entry starts on
	// Owned are the entry's files (R: lines, in the directory of the
	// F: line before them) that a language scanner could also report
	// (owned.Relevant), as clean layer paths (owned.Aliases), in file
	// order.
	Owned []string
}

// Parse reads apk's installed database from r: entries separated by empty
// lines, each a run of "X:value" lines with a one-letter field name X. It
// returns the entries in file order.
//
// Like apk itself, which refuses to load such a database ("FDB format
// error"), Parse rejects an entry without a P: (name) or V: (version) line
// instead of skipping it. It also rejects NUL bytes, lines over MaxLineLen,
// lines that are not fields, a repeated P:, V:, A: or o: in one entry, and
// values of those fields that are not valid UTF-8 or hold blanks or control
// characters. The error gives the line and the entry.
func Parse(ctx context.Context, r io.Reader) ([]Entry, error) {
	sc := lines.New(ctx, r, MaxLineLen, "an apk database")
	var (
		out  []Entry
		cur  Entry
		seen [4]bool // P, V, A, o
		n    int
		dir  string // the last F: line's directory
	)
	end := func() error {
		if cur.Line == 0 {
			return nil
		}
		e := cur
		cur, seen, dir = Entry{}, [4]bool{}, ""
		if e.Name == "" {
			return fmt.Errorf("entry at line %d: no P: (package name) line", e.Line)
		}
		if e.Version == "" {
			return fmt.Errorf("entry at line %d (package %q): no V: (version) line", e.Line, e.Name)
		}
		out = append(out, e)
		return nil
	}
	for sc.Scan() {
		n = sc.Line()
		line := sc.Bytes() // "\n" and "\r\n" removed
		if len(bytes.Trim(line, " \t\r")) == 0 {
			if err := end(); err != nil {
				return nil, err
			}
			continue
		}
		if len(line) < 2 || line[1] != ':' || !isLetter(line[0]) {
			return nil, fmt.Errorf("line %d: not a field: want a letter and a colon, got %.40q", n, line)
		}
		if cur.Line == 0 {
			cur.Line = n
		}
		var dst *string
		var i int
		switch line[0] {
		case 'F':
			dir = string(line[2:])
			continue
		case 'R':
			if p, ok := owned.Clean(dir + "/" + string(line[2:])); ok && owned.Relevant(p, true) {
				cur.Owned = append(cur.Owned, owned.Aliases(p)...)
			}
			continue
		case 'P':
			dst, i = &cur.Name, 0
		case 'V':
			dst, i = &cur.Version, 1
		case 'A':
			dst, i = &cur.Arch, 2
		case 'o':
			dst, i = &cur.Origin, 3
		default:
			continue
		}
		where := func() string {
			w := fmt.Sprintf("line %d: entry at line %d", n, cur.Line)
			if cur.Name != "" {
				w += fmt.Sprintf(" (package %.60q)", cur.Name)
			}
			return w
		}
		if seen[i] {
			return nil, fmt.Errorf("%s: repeated %c: line", where(), line[0])
		}
		seen[i] = true
		v := line[2:]
		if !utf8.Valid(v) {
			return nil, fmt.Errorf("%s: %c: value is not valid UTF-8", where(), line[0])
		}
		if len(v) == 0 || bytes.IndexFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return nil, fmt.Errorf("%s: %c: value %.60q is empty or holds blanks or control characters", where(), line[0], v)
		}
		*dst = string(v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := end(); err != nil {
		return nil, err
	}
	return out, nil
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
