package osrelease

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLineLen bounds one line of an os-release file, in bytes. Real lines are
// well under 200 bytes.
const MaxLineLen = 64 << 10

// Parse parses data in the os-release(5) format: newline-separated
// KEY=VALUE assignments in a subset of shell syntax. It returns the
// assignments; a key assigned twice keeps the last value.
//
// Values are read as systemd, whose parser defines the format in practice,
// reads them. Leading blanks on a line are ignored; lines that are then empty
// or start with '#' or ';' are comments. Blanks around '=' are ignored. A
// value is a run of segments: text in double quotes, where a backslash
// escapes one of " \ ` $ and is kept before any other character; text in
// single quotes, taken literally; and unquoted text, where a backslash
// escapes the next character and quotes are literal, which runs to the end
// of the line less trailing blanks. Blanks between a closing quote and the
// next segment are dropped. So NAME=Debian GNU/Linux is "Debian GNU/Linux",
// and A="x" "y" is "xy". CR before LF is tolerated.
//
// Unlike systemd, Parse does not let a quoted value or a trailing backslash
// continue onto the next line (no real os-release file does that), and it
// rejects lines that are not assignments, which systemd skips. The error,
// for those, for input that is not text (NUL or other control characters,
// invalid UTF-8) and for a line over MaxLineLen, gives the line number.
func Parse(data []byte) (map[string]string, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("line %d: NUL byte: binary data, not an os-release file", 1+bytes.Count(data[:i], []byte{'\n'}))
	}
	kv := make(map[string]string)
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(line) > MaxLineLen {
			return nil, fmt.Errorf("line %d: longer than %d bytes", n, MaxLineLen)
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if !utf8.Valid(line) {
			return nil, fmt.Errorf("line %d: invalid UTF-8", n)
		}
		if i := bytes.IndexFunc(line, isControl); i >= 0 {
			return nil, fmt.Errorf("line %d: control character %q", n, line[i])
		}
		k, v, ok, err := parseLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if ok {
			kv[k] = v
		}
	}
	return kv, nil
}

// isControl reports ASCII control characters other than tab.
func isControl(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// parseLine parses one line with line endings removed. ok is false for a
// blank or comment line.
func parseLine(line string) (key, value string, ok bool, err error) {
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] == '#' || s[0] == ';' {
		return "", "", false, nil
	}
	eq := strings.IndexByte(s, '=')
	if eq < 0 {
		return "", "", false, fmt.Errorf("not an assignment (no '='): %.40q", s)
	}
	key = strings.TrimRight(s[:eq], " \t")
	if !validKey(key) {
		return "", "", false, fmt.Errorf("invalid variable name %.40q", key)
	}
	value, err = parseValue(s[eq+1:])
	if err != nil {
		return "", "", false, fmt.Errorf("%s: %w", key, err)
	}
	return key, value, true, nil
}

// validKey reports whether k is a shell variable name.
func validKey(k string) bool {
	if k == "" || ('0' <= k[0] && k[0] <= '9') {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')) {
			return false
		}
	}
	return true
}

var (
	errUnterminatedDouble = errors.New("unterminated double-quoted value")
	errUnterminatedSingle = errors.New("unterminated single-quoted value")
	errTrailingBackslash  = errors.New("backslash at end of line")
)

// The states of parseValue, named after systemd's.
const (
	stPreValue = iota
	stValue
	stValueEscape
	stSingleQuote
	stDoubleQuote
	stDoubleQuoteEscape
)

// parseValue parses the value part of an assignment, s, which starts after
// the '='. It reads it as systemd's env-file parser does: see Parse.
func parseValue(s string) (string, error) {
	var b []byte
	trailing := -1 // where the run of unquoted blanks ending b starts, or -1
	state := stPreValue
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case stPreValue:
			switch {
			case c == '\'':
				state = stSingleQuote
			case c == '"':
				state = stDoubleQuote
			case c == '\\':
				state = stValueEscape
			case !isBlank(c):
				state = stValue
				b = append(b, c)
			}
		case stValue:
			switch {
			case c == '\\':
				state = stValueEscape
				trailing = -1
			case isBlank(c):
				if trailing < 0 {
					trailing = len(b)
				}
				b = append(b, c)
			default:
				trailing = -1
				b = append(b, c)
			}
		case stValueEscape:
			state = stValue
			b = append(b, c)
		case stSingleQuote:
			if c == '\'' {
				state = stPreValue
			} else {
				b = append(b, c)
			}
		case stDoubleQuote:
			switch c {
			case '"':
				state = stPreValue
			case '\\':
				state = stDoubleQuoteEscape
			default:
				b = append(b, c)
			}
		case stDoubleQuoteEscape:
			state = stDoubleQuote
			if strings.IndexByte("\"\\`$", c) < 0 {
				b = append(b, '\\')
			}
			b = append(b, c)
		}
	}
	switch state {
	case stSingleQuote:
		return "", errUnterminatedSingle
	case stDoubleQuote, stDoubleQuoteEscape:
		return "", errUnterminatedDouble
	case stValueEscape:
		return "", errTrailingBackslash
	case stValue:
		if trailing >= 0 {
			b = b[:trailing]
		}
	}
	return string(b), nil
}
