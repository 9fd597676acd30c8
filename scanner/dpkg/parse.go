package dpkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/stevedore-dev/stevedore/scanner/internal/lines"
)

// MaxLineLen bounds one line of a status file, in bytes. The longest lines
// of real status files (Depends, Breaks, Description) are a few KiB.
const MaxLineLen = 1 << 20

// Entry is one installed package of a dpkg status file.
type Entry struct {
	Name          string
	Version       string
	Arch          string // "" when the stanza has no Architecture
	SourceName    string // the package's own name when the stanza has no Source
	SourceVersion string // the package's version unless Source gives one
	Line          int    // the line the stanza starts on
}

// ParseOptions change how Parse reads a status file.
type ParseOptions struct {
	// MissingStatusInstalled makes a stanza with no Status field count as
	// installed. dpkg itself reads a missing Status as "not-installed", but
	// distroless images write var/lib/dpkg/status.d/<name> files without one.
	MissingStatusInstalled bool
}

// Parse reads a dpkg status database in deb822 format from r and returns the
// installed packages in file order.
//
// A package is installed when the third word of its Status is "installed"
// ("install ok installed", but also "hold ok installed" and the rest: dpkg
// says the files are on disk). Stanzas with no Package field, or an empty
// one, name no package and are skipped.
//
// Parse follows dpkg's reading of the format: an empty line (or CRLF) ends a
// stanza, a line starting with a blank continues the last field (a line of
// only blanks adds nothing to it), and the final newline may be missing. It
// is more lenient than dpkg in skipping lines of blanks between stanzas and
// '#' comment lines, which dpkg rejects in status files.
//
// Parse is as strict as dpkg where a broken database would give wrong
// answers: NUL bytes, lines over MaxLineLen, lines that are neither fields,
// continuations, comments nor blank, a duplicated field, an invalid package
// name, Status or Version, a malformed Source, and a missing Version in a
// stanza dpkg requires one in (any state but not-installed and
// half-installed) are errors that give the line and the stanza. Text in
// fields Parse does not read need not be UTF-8 (old databases have Latin-1
// maintainer names); the fields it returns must be.
func Parse(ctx context.Context, r io.Reader, opts ParseOptions) ([]Entry, error) {
	sc := lines.New(ctx, r, MaxLineLen, "a dpkg status file")
	var (
		out      []Entry
		st       stanza
		n        int
		lastBit  uint8  // fieldBit of the stanza's last field
		lastName string // its name, when lastBit != 0
	)
	// end ends the stanza being read, if any, adding its entry to out.
	end := func() error {
		if st.line == 0 {
			return nil
		}
		e, ok, err := st.entry(opts)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, e)
		}
		return nil
	}
	for sc.Scan() {
		n = sc.Line()
		line := sc.Bytes() // "\n" and "\r\n" removed
		switch {
		case len(line) > 0 && len(bytes.Trim(line, " \t\r")) == 0:
			// A line of blanks continues the last field's value with
			// nothing, as dpkg reads it (dpkg trims the value), or is
			// ignored between stanzas (where dpkg rejects it).
		case len(line) == 0:
			// An empty line ends the stanza; runs of them are allowed.
			if err := end(); err != nil {
				return nil, err
			}
			st, lastBit = stanza{}, 0
		case line[0] == '#':
			// deb822 comment.
		case line[0] == ' ' || line[0] == '\t':
			if st.line == 0 {
				return nil, fmt.Errorf("line %d: continuation line outside a stanza", n)
			}
			if lastBit != 0 {
				return nil, fmt.Errorf("line %d: stanza at line %d%s: field %q continues on a second line", n, st.line, st.pkgName(), lastName)
			}
		default:
			name, value, ok := bytes.Cut(line, []byte{':'})
			if !ok {
				return nil, fmt.Errorf("line %d: not a field: %.40q has no colon", n, line)
			}
			if err := checkFieldName(name); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			if st.line == 0 {
				st.line = n
			}
			lastBit = fieldBit(name)
			if lastBit == 0 {
				continue
			}
			lastName = string(name)
			if st.have&lastBit != 0 {
				return nil, fmt.Errorf("line %d: stanza at line %d%s: duplicate %q field", n, st.line, st.pkgName(), name)
			}
			v := bytes.Trim(value, " \t\r")
			if !utf8.Valid(v) {
				return nil, fmt.Errorf("line %d: stanza at line %d%s: field %q is not valid UTF-8", n, st.line, st.pkgName(), name)
			}
			st.set(lastBit, string(v))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := end(); err != nil {
		return nil, err
	}
	return out, nil
}

// checkFieldName checks a field name as dpkg does: printable ASCII without
// blanks, not starting with '-'. ('#' at the start is a comment, handled
// before.)
func checkFieldName(name []byte) error {
	if len(name) == 0 {
		return errors.New("empty field name")
	}
	if name[0] == '-' {
		return fmt.Errorf("field name %.40q starts with '-'", name)
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("invalid field name %.40q", name)
		}
	}
	return nil
}

// stanza collects the fields Parse reads from one stanza.
type stanza struct {
	line                            int // first line; 0 before the first field
	pkg, version, arch, src, status string
	have                            uint8
}

// The fields Parse reads, as bits of stanza.have.
const (
	fPackage uint8 = 1 << iota
	fVersion
	fArchitecture
	fSource
	fStatus
)

// fieldBit returns the bit of the field called name, or 0 for a field Parse
// does not read. Field names are case-insensitive.
func fieldBit(name []byte) uint8 {
	for _, f := range [...]struct {
		name string
		bit  uint8
	}{
		{"Package", fPackage}, {"Version", fVersion}, {"Architecture", fArchitecture},
		{"Source", fSource}, {"Status", fStatus},
	} {
		if equalFoldASCII(name, f.name) {
			return f.bit
		}
	}
	return 0
}

// equalFoldASCII reports whether b and s are equal ignoring ASCII case.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func (s *stanza) set(bit uint8, v string) {
	s.have |= bit
	switch bit {
	case fPackage:
		s.pkg = v
	case fVersion:
		s.version = v
	case fArchitecture:
		s.arch = v
	case fSource:
		s.src = v
	case fStatus:
		s.status = v
	}
}

// pkgName describes the stanza's package for error messages.
func (s *stanza) pkgName() string {
	if s.pkg == "" {
		return ""
	}
	return fmt.Sprintf(" (package %.60q)", s.pkg)
}

// entry validates the stanza and returns its package if it is installed.
func (s *stanza) entry(opts ParseOptions) (Entry, bool, error) {
	where := func(format string, args ...any) error {
		return fmt.Errorf("stanza at line %d%s: %s", s.line, s.pkgName(), fmt.Sprintf(format, args...))
	}
	if s.pkg == "" {
		return Entry{}, false, nil
	}
	if err := checkPackageName(s.pkg); err != nil {
		return Entry{}, false, where("Package: %v", err)
	}
	state := "not-installed"
	if s.have&fStatus != 0 {
		var err error
		if state, err = parseStatus(s.status); err != nil {
			return Entry{}, false, where("Status %.60q: %v", s.status, err)
		}
	} else if opts.MissingStatusInstalled {
		state = "installed"
	}
	if s.version == "" {
		if state == "not-installed" || state == "half-installed" {
			return Entry{}, false, nil
		}
		return Entry{}, false, where("missing Version field")
	}
	if err := checkVersion(s.version); err != nil {
		return Entry{}, false, where("Version %.60q: %v", s.version, err)
	}
	if state != "installed" {
		return Entry{}, false, nil
	}
	if strings.ContainsAny(s.arch, " \t") || strings.IndexFunc(s.arch, isControl) >= 0 {
		return Entry{}, false, where("invalid Architecture %.60q", s.arch)
	}
	srcName, srcVersion, err := parseSource(s.src)
	if err != nil {
		return Entry{}, false, where("Source %.60q: %v", s.src, err)
	}
	e := Entry{
		Name:          s.pkg,
		Version:       s.version,
		Arch:          s.arch,
		SourceName:    srcName,
		SourceVersion: srcVersion,
		Line:          s.line,
	}
	if e.SourceName == "" {
		e.SourceName = e.Name
	}
	if e.SourceVersion == "" {
		e.SourceVersion = e.Version
	}
	return e, true, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkPackageName applies dpkg's rule: an alphanumeric character, then
// alphanumerics and "-+._".
func checkPackageName(name string) error {
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
		if i == 0 && !alnum {
			return fmt.Errorf("invalid name %.60q: must start with a letter or digit", name)
		}
		if !alnum && strings.IndexByte("-+._", c) < 0 {
			return fmt.Errorf("invalid name %.60q: character %q not allowed", name, c)
		}
	}
	return nil
}

// parseStatus parses "want flag state" and returns the state.
func parseStatus(s string) (string, error) {
	w := strings.Fields(s)
	if len(w) != 3 {
		return "", errors.New("want three words: selection, flag, state")
	}
	switch w[0] {
	case "unknown", "install", "hold", "deinstall", "purge":
	default:
		return "", fmt.Errorf("unknown selection %q", w[0])
	}
	switch w[1] {
	case "ok", "reinstreq", "hold", "hold-reinstreq":
	default:
		return "", fmt.Errorf("unknown flag %q", w[1])
	}
	switch w[2] {
	case "not-installed", "config-files", "half-installed", "unpacked",
		"half-configured", "triggers-awaited", "triggers-pending", "installed":
	default:
		return "", fmt.Errorf("unknown state %q", w[2])
	}
	return w[2], nil
}

// checkVersion rejects what dpkg's parseversion rejects: an empty version,
// blanks inside, a bad epoch, nothing after the epoch, an empty revision or
// upstream version. Like dpkg it does not reject unusual characters, but it
// does reject control characters.
func checkVersion(v string) error {
	if v == "" {
		return errors.New("empty")
	}
	if strings.IndexFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || isControl(r) }) >= 0 {
		return errors.New("contains blanks or control characters")
	}
	if epoch, rest, ok := strings.Cut(v, ":"); ok {
		if epoch == "" {
			return errors.New("empty epoch")
		}
		n, err := strconv.ParseUint(epoch, 10, 31)
		if err != nil || n > 1<<31-1 {
			return fmt.Errorf("epoch %q is not a number below 2^31", epoch)
		}
		if rest == "" {
			return errors.New("nothing after the epoch")
		}
		v = rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		if i == len(v)-1 {
			return errors.New("empty revision")
		}
		v = v[:i]
	}
	if v == "" {
		return errors.New("empty upstream version")
	}
	return nil
}

// parseSource parses a Source field: "name" or "name (version)".
func parseSource(s string) (name, version string, err error) {
	if s == "" {
		return "", "", nil
	}
	name, rest, _ := strings.Cut(s, " ")
	if err := checkPackageName(name); err != nil || name == "" {
		return "", "", fmt.Errorf("invalid source package name %.60q", name)
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return name, "", nil
	}
	if len(rest) < 2 || rest[0] != '(' || rest[len(rest)-1] != ')' {
		return "", "", errors.New(`want "name" or "name (version)"`)
	}
	version = strings.TrimSpace(rest[1 : len(rest)-1])
	if err := checkVersion(version); err != nil {
		return "", "", fmt.Errorf("source version %.60q: %w", version, err)
	}
	return name, version, nil
}
