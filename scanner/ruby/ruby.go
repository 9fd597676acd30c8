// Package ruby finds installed Ruby gems from the specifications RubyGems
// writes when it installs one: GEM_HOME/specifications/NAME-VERSION.gemspec
// (and specifications/default/ for the gems that come with Ruby).
package ruby

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
)

// MaxFileSize is the largest gemspec read; a larger one is skipped with a
// warning. Installed specifications are a few KiB.
const MaxFileSize = 4 << 20

// maxLine bounds one line of a gemspec.
const maxLine = 1 << 20

// Scanner reports the gems installed in a layer.
//
// The specification is Ruby code; it is never run. The scanner reads the
// lines RubyGems writes, "s.name = "rake".freeze", "s.version = "13.0.3""
// and "s.platform = "x86_64-linux".freeze" (string literals in any of
// Ruby's quotings), and falls back to the "# stub: NAME VERSION PLATFORM"
// comment at the top for what they lack.
//
// Each package is a binary package with the gem's name and version, a PURL
// pkg:gem/<name>@<version> (with a platform qualifier for a platform other
// than "ruby"), and Filepath and PackageDB both the gemspec's path (the
// coalescer keeps one package per PackageDB: the specification is that
// gem's database).
//
// A gemspec without a usable name or version, over MaxFileSize or with a
// line over 1 MiB is skipped with a warning in Result.Warnings.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "ruby", version "1", a package scanner.
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "ruby", Version: "1", Kind: scanner.KindPackage}
}

// Match reports whether path is ".../specifications/X.gemspec" or
// ".../specifications/default/X.gemspec".
func (Scanner) Match(path string) bool {
	dir, base, ok := cutLast(path)
	if !ok || !strings.HasSuffix(base, ".gemspec") || len(base) == len(".gemspec") {
		return false
	}
	if rest, ok := strings.CutSuffix(dir, "/default"); ok {
		dir = rest
	}
	return dir == "specifications" || strings.HasSuffix(dir, "/specifications")
}

func cutLast(p string) (dir, base string, ok bool) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p, false
	}
	return p[:i], p[i+1:], true
}

// Scan reads the matched specifications, in path order. Only an error
// opening or reading a file, or the context ending, is returned as an error.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	return langpkg.Scan(ctx, "ruby", files, MaxFileSize, read)
}

// read reads one specification; one that cannot be used is skipped.
func read(f scanner.File, _ *langpkg.Warnings) ([]*report.Package, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("ruby: opening %s: %w", f.Path(), err)
	}
	defer rc.Close()
	lr := limitio.NewReader(rc, MaxFileSize)
	spec, err := ParseGemspec(lr)
	var pe *ParseError
	switch {
	case lr.Exceeded:
		return nil, langpkg.Skip(&ParseError{Reason: fmt.Sprintf("more than the limit of %d bytes", MaxFileSize)})
	case errors.As(err, &pe):
		return nil, langpkg.Skip(err)
	case err != nil:
		return nil, fmt.Errorf("ruby: reading %s: %w", f.Path(), err)
	}
	return []*report.Package{newPackage(spec, f.Path())}, nil
}

func newPackage(g Gemspec, path string) *report.Package {
	var q packageurl.Qualifiers
	if g.Platform != "" && g.Platform != "ruby" {
		q = packageurl.Qualifiers{{Key: "platform", Value: g.Platform}}
	}
	purl := packageurl.NewPackageURL(packageurl.TypeGem, "", g.Name, g.Version, q, "").ToString()
	return langpkg.Package(g.Name, g.Version, path, purl)
}

// Gemspec is what the scanner reads of a specification.
type Gemspec struct {
	Name, Version string
	// Platform is "" when the gemspec does not say ("ruby").
	Platform string
}

// ParseError is a gemspec that cannot be used: the file is skipped, the
// layer is not failed.
type ParseError = langpkg.ParseError

var (
	// blockRE finds the specification's block variable: "Gem::Specification.new do |s|".
	blockRE = regexp.MustCompile(`Gem::Specification\.new\s*(?:do\s*\|\s*|\{\s*\|\s*)([A-Za-z_][A-Za-z0-9_]*)\s*\|`)
	// assignRE is "VAR.FIELD = VALUE".
	assignRE = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\.(name|version|platform)\s*=\s*(.*)$`)
	// versionNewRE is "Gem::Version.new(LITERAL)".
	versionNewRE = regexp.MustCompile(`^Gem::Version\.new\s*\(\s*`)
)

// ParseGemspec reads a gem specification as RubyGems writes it for an
// installed gem, without running it: the first "VAR.name = LITERAL",
// "VAR.version = LITERAL" (or "Gem::Version.new(LITERAL)") and
// "VAR.platform = LITERAL" lines, VAR being the variable of the
// "Gem::Specification.new do |VAR|" block, where LITERAL is a Ruby string
// literal ("...", '...', %q<...> and the other %-quotings) optionally
// followed by ".freeze". What those lines lack comes from the
// "# stub: NAME VERSION PLATFORM ..." comment. A literal with interpolation
// ("#{...}") is not a value. It fails with a *ParseError when the name or
// the version is missing or invalid (langpkg.Value), or a line is over
// 1 MiB, and with the reader's error when reading fails.
func ParseGemspec(r io.Reader) (Gemspec, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var g, stub Gemspec
	var blockVar string
	var seen [3]bool
	var problems []string
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# stub: "); ok && stub.Name == "" {
			f := strings.Fields(rest)
			if len(f) >= 2 {
				stub.Name, stub.Version = f[0], f[1]
				if len(f) >= 3 {
					stub.Platform = f[2]
				}
			}
			continue
		}
		if blockVar == "" {
			if m := blockRE.FindStringSubmatch(line); m != nil {
				blockVar = m[1]
			}
			continue
		}
		m := assignRE.FindStringSubmatch(line)
		if m == nil || m[1] != blockVar {
			continue
		}
		i := map[string]int{"name": 0, "version": 1, "platform": 2}[m[2]]
		if seen[i] {
			continue
		}
		seen[i] = true
		rhs := m[3]
		if i == 1 {
			if loc := versionNewRE.FindStringIndex(rhs); loc != nil {
				rhs = rhs[loc[1]:]
			}
		}
		v, err := stringLiteral(rhs)
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %s: %v", n, m[2], err))
			continue
		}
		switch i {
		case 0:
			g.Name = v
		case 1:
			g.Version = v
		case 2:
			g.Platform = v
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Gemspec{}, &ParseError{Reason: fmt.Sprintf("a line longer than %d bytes", maxLine)}
		}
		return Gemspec{}, err
	}
	if g.Name == "" {
		g.Name = stub.Name
	}
	if g.Version == "" {
		g.Version = stub.Version
	}
	if g.Platform == "" && !seen[2] {
		g.Platform = stub.Platform
	}
	fail := func(what string, err error) (Gemspec, error) {
		if len(problems) > 0 {
			err = fmt.Errorf("%w (%s)", err, strings.Join(problems, "; "))
		}
		return Gemspec{}, &ParseError{Reason: what, Err: err}
	}
	var err error
	if g.Name, err = langpkg.Value(g.Name); err != nil {
		return fail("name", err)
	}
	if g.Version, err = langpkg.Value(g.Version); err != nil {
		return fail("version", err)
	}
	if g.Platform != "" {
		if g.Platform, err = langpkg.Value(g.Platform); err != nil {
			return fail("platform", err)
		}
	}
	return g, nil
}

// stringLiteral parses the Ruby string literal at the start of s (after
// blanks) and returns its value.
func stringLiteral(s string) (string, error) {
	s = strings.TrimLeft(s, " \t")
	if s == "" {
		return "", errors.New("no value")
	}
	switch s[0] {
	case '"':
		return quoted(s[1:], '"', true)
	case '\'':
		return quoted(s[1:], '\'', false)
	case '%':
		if len(s) < 3 {
			return "", errors.New("not a string literal")
		}
		kind, rest := byte('Q'), s[1:]
		if rest[0] == 'q' || rest[0] == 'Q' {
			kind, rest = rest[0], rest[1:]
		}
		if rest == "" {
			return "", errors.New("not a string literal")
		}
		open := rest[0]
		closing, ok := map[byte]byte{'<': '>', '(': ')', '[': ']', '{': '}'}[open]
		if !ok {
			if open >= utf8.RuneSelf || isAlnum(open) || open == ' ' {
				return "", errors.New("not a string literal")
			}
			closing = open
		}
		if kind == 'q' {
			return quoted(rest[1:], closing, false)
		}
		return quoted(rest[1:], closing, true)
	}
	return "", fmt.Errorf("not a string literal: %.40q", s)
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// quoted reads a string literal up to its closing delimiter end. In a
// single-quoted literal (double false) \\ and \<end> are the only
// escapes; in a double-quoted one Ruby's escapes are decoded (escape) and
// interpolation is refused.
func quoted(s string, end byte, double bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == end:
			return b.String(), nil
		case !double && c == '\\' && i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == end):
			i++
			b.WriteByte(s[i])
		case double && c == '#' && i+1 < len(s) && (s[i+1] == '{' || s[i+1] == '@' || s[i+1] == '$'):
			return "", errors.New("interpolation in the string literal")
		case double && c == '\\':
			n, err := escape(&b, s[i+1:])
			if err != nil {
				return "", err
			}
			i += n
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated string literal")
}

// escape decodes into b the escape of a double-quoted literal that s, what
// follows the backslash, starts with, and returns the bytes it took.
func escape(b *strings.Builder, s string) (int, error) {
	if s == "" {
		return 0, errors.New("unterminated string literal")
	}
	switch e := s[0]; e {
	case 'n':
		b.WriteByte('\n')
	case 't':
		b.WriteByte('\t')
	case 's':
		b.WriteByte(' ')
	case '0':
		b.WriteByte(0)
	case 'u':
		r, n, err := unicodeEscape(s[1:])
		if err != nil {
			return 0, err
		}
		b.WriteRune(r)
		return 1 + n, nil
	case 'x':
		j := 1
		for j < len(s) && j < 3 && isHex(s[j]) {
			j++
		}
		if j == 1 {
			return 0, errors.New(`invalid \x escape`)
		}
		v, _ := strconv.ParseUint(s[1:j], 16, 8)
		b.WriteByte(byte(v))
		return j, nil
	default:
		// \" \\ \# and any other character stand for themselves.
		b.WriteByte(e)
	}
	return 1, nil
}

// unicodeEscape decodes what follows "\u": XXXX or {X...}. It returns the
// rune and the bytes consumed.
func unicodeEscape(s string) (rune, int, error) {
	hex, n := "", 0
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 0 || end > 7 {
			return 0, 0, errors.New(`invalid \u{} escape`)
		}
		hex, n = s[1:end], end+1
	} else {
		if len(s) < 4 {
			return 0, 0, errors.New(`invalid \u escape`)
		}
		hex, n = s[:4], 4
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil || v > utf8.MaxRune || !utf8.ValidRune(rune(v)) {
		return 0, 0, errors.New(`invalid \u escape`)
	}
	return rune(v), n, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
