package runtime

import (
	"bufio"
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
)

// Pattern is a version string to find in a binary: a regular expression
// whose first non-empty group is the version, tried where one of its
// literals occurs (a match starts with a literal), so that a binary of
// hundreds of MiB is not run through the regular expression whole.
type Pattern struct {
	Literals [][]byte
	Re       *regexp.Regexp
}

// Version strings in the runtimes' binaries (as Syft's binary classifiers
// find them).
var (
	// Node.js 7 and later: "node.js/v20.11.1"; before, "v6.17.1" (or
	// "node v0.10.48") between NULs.
	nodeVersion = Pattern{
		Literals: [][]byte{[]byte("node.js/v"), []byte("\x00v"), []byte("\x00node v")},
		Re:       regexp.MustCompile(`^(?:node\.js/v([0-9]+\.[0-9]+\.[0-9]+)|\x00(?:node )?v((?:0|4|5|6)\.[0-9]+\.[0-9]+)\x00)`),
	}
	// RUBY_DESCRIPTION: "ruby 3.2.1 (2023-02-08 revision 31819e82c8)
	// [x86_64-linux]", "ruby 2.7.7p221 (...".
	rubyVersion = Pattern{
		Literals: [][]byte{[]byte("ruby ")},
		Re:       regexp.MustCompile(`^ruby ([0-9]+\.[0-9]+\.[0-9]+(?:(?:p|preview|rc|dev)[0-9]*)?) \(`),
	}
	// PHP's header line, "X-Powered-By: PHP/" PHP_VERSION.
	phpVersion = Pattern{
		Literals: [][]byte{[]byte("X-Powered-By: PHP/")},
		Re:       regexp.MustCompile(`^X-Powered-By: PHP/([0-9]+\.[0-9]+\.[0-9]+(?:(?:alpha|beta|RC)[0-9]+)?)(?:[^0-9A-Za-z.]|$)`),
	}
)

// pythonVersion matches PY_VERSION of Python xy ("3.11"): "3.11.7" (or
// "3.13.0rc1") ending a string, after a NUL or, where the linker merged the
// literal into the tail of the source directory's name, after "/Python-".
func pythonVersion(xy string) Pattern {
	return Pattern{
		Literals: [][]byte{[]byte("\x00" + xy + "."), []byte("/Python-" + xy + ".")},
		Re:       regexp.MustCompile(`^(?:\x00|/Python-)(` + regexp.QuoteMeta(xy) + `\.[0-9]+(?:(?:a|b|rc)[0-9]+)?\+?)\x00`),
	}
}

// window and overlap are Find's read size and the bytes kept from one
// read to the next (longer than any match).
const (
	window  = 1 << 20
	overlap = 256
)

// Find returns the first non-empty submatch of pat in r (the match at the
// lowest offset), read a window at a time (a match is shorter than overlap
// bytes), "" when there is none.
func Find(r io.Reader, pat Pattern) (string, error) {
	buf := make([]byte, overlap+window)
	kept := 0
	for {
		n, err := io.ReadFull(r, buf[kept:])
		data := buf[:kept+n]
		if v := findIn(data, pat); v != "" {
			return v, nil
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return "", nil
		default:
			return "", err
		}
		kept = copy(buf, data[len(data)-overlap:])
	}
}

// findIn returns the version of pat's match at the lowest offset in data.
func findIn(data []byte, pat Pattern) string {
	best, bestAt := "", len(data)
	for _, lit := range pat.Literals {
		for off := 0; off < bestAt; {
			i := bytes.Index(data[off:bestAt], lit)
			if i < 0 {
				break
			}
			at := off + i
			if m := pat.Re.FindSubmatch(data[at:min(len(data), at+overlap)]); m != nil {
				for _, g := range m[1:] {
					if len(g) > 0 {
						best, bestAt = string(g), at
						break
					}
				}
				if bestAt == at {
					break
				}
			}
			off = at + 1
		}
	}
	return best
}

// jdkRelease reads a JDK's release file: JAVA_VERSION, and IMPLEMENTOR as
// a qualifier. "" when the file is absent or has no valid JAVA_VERSION.
func (l *layer) jdkRelease(p string) (string, packageurl.Qualifiers, error) {
	b, err := l.readSmall(p)
	if err != nil || b == nil {
		return "", nil, err
	}
	kv := ParseRelease(b)
	v, err := langpkg.Value(kv["JAVA_VERSION"])
	if err != nil {
		return "", nil, nil
	}
	var q packageurl.Qualifiers
	if impl := strings.TrimSpace(kv["IMPLEMENTOR"]); impl != "" && len(impl) <= langpkg.MaxValueLen && !strings.ContainsAny(impl, "\x00\n") {
		q = packageurl.Qualifiers{{Key: "implementor", Value: impl}}
	}
	return v, q, nil
}

// ParseRelease reads KEY="value" lines (a JDK's release file, shell
// syntax): a double-quoted value is unquoted (with its backslash escapes),
// other values are taken as written. Lines that are not assignments are
// ignored; the first assignment of a key wins. It never fails.
func ParseRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, MaxMetadataSize+1)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t#") {
			continue
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			} else {
				v = v[1 : len(v)-1]
			}
		}
		if _, dup := out[k]; !dup {
			out[k] = v
		}
	}
	return out
}

// goVersionLine is the first line of a Go toolchain's VERSION file.
var goVersionLine = regexp.MustCompile(`^go([0-9]+\.[0-9]+(?:\.[0-9]+)?(?:(?:rc|beta)[0-9]+)?)$`)

// goVersion reads a Go toolchain's VERSION file: "go1.22.1" gives
// "1.22.1"; "" when absent or not a release's.
func (l *layer) goVersion(p string) (string, error) {
	b, err := l.readSmall(p)
	if err != nil || b == nil {
		return "", err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	m := goVersionLine.FindStringSubmatch(strings.TrimSpace(first))
	if m == nil {
		return "", nil
	}
	return m[1], nil
}
