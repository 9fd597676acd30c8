// Package langpkg holds what the language-package scanners (python, java,
// gobinary, npm, ruby, composer, conda, dotnet, rust) share: the loop over
// their files, reading a file whole within a limit, checking the values they
// read and collecting warnings about the files they skip.
package langpkg

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stevedore-dev/stevedore/report"
)

// MaxValueLen bounds a package name or version, in bytes.
const MaxValueLen = 1024

// Value checks a name or version read from a file and returns it without
// surrounding blanks. It must be non-empty, valid UTF-8, at most MaxValueLen
// bytes, and hold no control characters, blanks or U+FFFD (what a decoder
// puts in place of invalid bytes).
func Value(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("empty")
	case len(s) > MaxValueLen:
		return "", fmt.Errorf("%d bytes, more than %d", len(s), MaxValueLen)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%.60q is not valid UTF-8", s)
	case strings.ContainsRune(s, utf8.RuneError):
		return "", fmt.Errorf("%.60q holds U+FFFD (invalid bytes replaced)", s)
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return "", fmt.Errorf("%.60q holds blanks or control characters", s)
	}
	return s, nil
}

// MaxWarnings bounds the warnings a Warnings keeps; the rest are counted.
const MaxWarnings = 100

// Warnings collects warnings, at most MaxWarnings of them and a last line
// counting the others, so that a hostile layer cannot grow memory through
// them.
type Warnings struct {
	list []string
	n    int
}

// Addf adds a warning.
func (w *Warnings) Addf(format string, args ...any) {
	w.n++
	if w.n <= MaxWarnings {
		w.list = append(w.list, fmt.Sprintf(format, args...))
	}
}

// List returns the warnings, nil when there are none.
func (w *Warnings) List() []string {
	if w.n <= MaxWarnings {
		return w.list
	}
	return append(w.list[:MaxWarnings:MaxWarnings], fmt.Sprintf("%d more warnings not shown", w.n-MaxWarnings))
}

// Package is what a language scanner reports for a package found in file:
// a binary package with name, version and purl, whose Filepath and
// PackageDB are both file (the file is the package's own database).
func Package(name, version, file, purl string) *report.Package {
	return &report.Package{
		Name:      name,
		Version:   version,
		Kind:      report.KindBinary,
		PackageDB: file,
		Filepath:  file,
		PURL:      purl,
	}
}
