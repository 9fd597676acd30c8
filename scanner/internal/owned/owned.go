// Package owned selects, among the files an OS package manager says a
// package owns, those a language-package scanner could also report, so that
// the coalescer can drop a language package that an OS package installed
// (a Python module installed by dpkg or rpm is reported once, by its OS
// package).
package owned

import (
	"path"
	"strings"
)

// MaxFiles bounds the owned paths one scan records. Past it the scanner
// stops recording, with a warning: ownership only removes duplicates, so a
// cut list costs precision, never correctness of the OS packages.
const MaxFiles = 500_000

// Clean turns a path as a package manager records it ("/usr/bin/x",
// "./usr/bin/x") into a layer path ("usr/bin/x"). It reports false for the
// root and for paths that are not local after cleaning.
func Clean(p string) (string, bool) {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return "", false
	}
	p = path.Clean(p)
	if p == "." || p == ".." || strings.HasPrefix(p, "../") || strings.ContainsRune(p, 0) {
		return "", false
	}
	return p, true
}

// Relevant reports whether the clean layer path p is one a language scanner
// could report or read a package from: anything under a Python
// site-packages or dist-packages directory or in a .dist-info or .egg-info
// one, anything under node_modules, a .jar, .war or .ear archive, anything
// under a Ruby gems or specifications directory, anything in a conda-meta
// directory, and, when the entry may be a regular file, anything below a
// bin, sbin or libexec directory (Go and Rust executables), a Cargo.lock, a
// *.deps.json (.NET), a composer/installed.json (PHP) and a zipped Python
// .egg. maybeRegular is false when the package manager records the
// entry as a directory or a symbolic link; dpkg's .list files do not say,
// so dpkg passes true.
func Relevant(p string, maybeRegular bool) bool {
	s := "/" + p
	switch {
	case strings.Contains(s, ".dist-info/"), strings.HasSuffix(s, ".dist-info"),
		strings.Contains(s, ".egg-info"),
		strings.Contains(s, "/site-packages/"), strings.Contains(s, "/dist-packages/"),
		strings.Contains(s, "/node_modules/"),
		strings.Contains(s, "/gems/"), strings.Contains(s, "/specifications/"),
		strings.Contains(s, "/conda-meta/"):
		return true
	}
	if maybeRegular {
		base := strings.ToLower(path.Base(s))
		if strings.HasSuffix(base, ".jar") || strings.HasSuffix(base, ".war") || strings.HasSuffix(base, ".ear") ||
			strings.HasSuffix(base, ".egg") || strings.HasSuffix(base, ".deps.json") || base == "cargo.lock" ||
			strings.HasSuffix(s, "/composer/installed.json") {
			return true
		}
		if strings.Contains(s, "/bin/") || strings.Contains(s, "/sbin/") || strings.Contains(s, "/libexec/") {
			return true
		}
	}
	return false
}

// mergedUsr are the top-level directories that a merged-/usr system makes
// symbolic links into /usr.
var mergedUsr = map[string]bool{"bin": true, "sbin": true, "lib": true, "lib32": true, "lib64": true, "libx32": true}

// Aliases returns p and, when p is under a top-level directory that a
// merged-/usr system links into /usr (bin, sbin, lib, lib32, lib64, libx32),
// the same path under usr/. A package manager records the path it shipped
// ("bin/ls" in Debian's coreutils) while the layer holds the file at the
// link's target ("usr/bin/ls").
func Aliases(p string) []string {
	first, _, _ := strings.Cut(p, "/")
	if mergedUsr[first] {
		return []string{p, "usr/" + p}
	}
	return []string{p}
}
