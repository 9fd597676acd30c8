// Package runtime finds language runtimes copied into an image without a
// package manager (a Python, Node.js, OpenJDK, Ruby, PHP or Go toolchain
// installed from a tarball or built from source) and reports each as a
// package with the version the runtime itself states.
package runtime

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
)

// MaxFileSize is the largest binary searched for a version string.
const MaxFileSize = 512 << 20

// MaxMetadataSize is the largest JDK release or Go VERSION file read.
const MaxMetadataSize = 64 << 10

// Scanner reports the language runtimes of a layer.
//
// A runtime is reported for its executable in a bin directory, whose path is
// the package's Filepath and PackageDB: an OS package manager's file lists
// name such paths (scanner/internal/owned), so the coalescer drops a runtime
// that dpkg, rpm or apk installed, and reports only those copied in. Its
// version is what the runtime says of itself, never a guess from a path:
//
//   - OpenJDK: DIR/bin/java with DIR/release in the same layer, the
//     release file's JAVA_VERSION (and IMPLEMENTOR as a PURL qualifier):
//     name "openjdk", PURL pkg:generic/openjdk@21.0.4?implementor=...;
//   - Go toolchain: GOROOT/bin/go with GOROOT/VERSION whose first line is
//     "go1.N[.P]": name "go", PURL pkg:generic/go@1.22.1;
//   - Python: bin/pythonX.Y holding the version string "X.Y.P" (the
//     interpreter's PY_VERSION), else a libpythonX.Y*.so* of the same
//     layer holding it (a build with --enable-shared keeps it there): name
//     "python", PURL pkg:generic/python@3.11.7;
//   - Node.js: bin/node holding "node.js/vX.Y.Z" (or, before Node.js 7,
//     "vX.Y.Z" between NULs): name "node", PURL pkg:generic/node@20.11.1;
//   - Ruby: bin/ruby, else a libruby.so* of the same layer, holding
//     "ruby X.Y.Z[pN] (": name "ruby", PURL pkg:generic/ruby@3.2.1;
//   - PHP: bin/php holding "X-Powered-By: PHP/X.Y.Z": name "php", PURL
//     pkg:generic/php@8.2.1.
//
// A JDK's release file and a Go toolchain's VERSION file are asked for by
// name and size (MatchFile: at most MaxMetadataSize bytes), executables and
// libraries by path (Match).
//
// The package types follow Syft's binary classifiers (pkg:generic with the
// runtime's name). A binary without its version string, or a JDK without
// its release file, is not reported. A file over MaxFileSize is skipped with
// a warning.
//
// The zero value is ready to use.
type Scanner struct{}

var (
	_ scanner.Scanner     = Scanner{}
	_ scanner.FileMatcher = Scanner{}
)

// Info identifies the scanner: "runtime", version "1", a package scanner.
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "runtime", Version: "1", Kind: scanner.KindPackage}
}

var (
	pythonBin = regexp.MustCompile(`^python([23]\.[0-9]+)$`)
	pythonLib = regexp.MustCompile(`^libpython([23]\.[0-9]+)[dmu]*\.so(\.[0-9]+)*$`)
	rubyLib   = regexp.MustCompile(`^libruby(-[0-9.]+)?\.so(\.[0-9]+)*$`)
)

// binNames are the executables the scanner reads (besides pythonX.Y).
var binNames = map[string]bool{"java": true, "go": true, "node": true, "ruby": true, "php": true}

// Match reports whether path is a runtime's executable in a bin directory,
// or a libpython or libruby shared library.
func (Scanner) Match(p string) bool {
	base := path.Base(p)
	if path.Base(path.Dir(p)) == "bin" {
		return binNames[base] || pythonBin.MatchString(base)
	}
	return pythonLib.MatchString(base) || rubyLib.MatchString(base)
}

// MatchFile reports whether the file could be a JDK's release file or a
// Go toolchain's VERSION file: a regular file of that name of at most
// MaxMetadataSize bytes (a larger one is none, and is not kept).
func (Scanner) MatchFile(p string, mode fs.FileMode, size int64) bool {
	base := path.Base(p)
	return mode.IsRegular() && size <= MaxMetadataSize && (base == "release" || base == "VERSION")
}

// MatchHead keeps every file MatchFile accepted.
func (Scanner) MatchHead(string, []byte) (bool, []byte) { return true, nil }

// Scan reports the runtimes of the matched files, in path order.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	byPath := make(map[string]scanner.File, len(files))
	var bins []string
	for _, f := range files {
		byPath[f.Path()] = f
		if path.Base(path.Dir(f.Path())) == "bin" {
			bins = append(bins, f.Path())
		}
	}
	sort.Strings(bins)
	l := &layer{files: byPath, warn: &langpkg.Warnings{}}
	res := &scanner.Result{}
	for _, p := range bins {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
		pkg, err := l.runtime(p)
		if err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
		if pkg != nil {
			res.Packages = append(res.Packages, pkg)
		}
	}
	res.Warnings = l.warn.List()
	return res, nil
}

// layer is the matched files of one layer.
type layer struct {
	files map[string]scanner.File
	warn  *langpkg.Warnings
}

// runtime returns the runtime whose executable is at p, nil when there is
// none. Only an error opening a file is an error.
func (l *layer) runtime(p string) (*report.Package, error) {
	base := path.Base(p)
	home := path.Dir(path.Dir(p))
	var name, version string
	var q packageurl.Qualifiers
	var err error
	switch {
	case base == "java":
		name = "openjdk"
		version, q, err = l.jdkRelease(path.Join(home, "release"))
	case base == "go":
		name = "go"
		version, err = l.goVersion(path.Join(home, "VERSION"))
	case base == "node":
		name = "node"
		version, err = l.search(p, nodeVersion)
	case base == "ruby":
		name = "ruby"
		version, err = l.searchWithLibs(p, rubyVersion, func(b string) bool { return rubyLib.MatchString(b) })
	case base == "php":
		name = "php"
		version, err = l.search(p, phpVersion)
	default:
		m := pythonBin.FindStringSubmatch(base)
		if m == nil {
			return nil, nil
		}
		name = "python"
		re := pythonVersion(m[1])
		version, err = l.searchWithLibs(p, re, func(b string) bool {
			lm := pythonLib.FindStringSubmatch(b)
			return lm != nil && lm[1] == m[1]
		})
	}
	if err != nil || version == "" {
		return nil, err
	}
	purl := packageurl.NewPackageURL(packageurl.TypeGeneric, "", name, version, q, "").ToString()
	return langpkg.Package(name, version, p, purl), nil
}

// readSmall reads a metadata file of the layer, nil when absent or over
// MaxMetadataSize (with a warning).
func (l *layer) readSmall(p string) ([]byte, error) {
	f, ok := l.files[p]
	if !ok {
		return nil, nil
	}
	if f.Size() > MaxMetadataSize {
		l.warn.Addf("runtime: %s: %d bytes, more than the limit of %d; skipped", p, f.Size(), MaxMetadataSize)
		return nil, nil
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxMetadataSize))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return b, nil
}

// search returns the version pattern re finds in the file at p, "" when the
// file has none (or is not a valid value).
func (l *layer) search(p string, re Pattern) (string, error) {
	f := l.files[p]
	if f.Size() > MaxFileSize {
		l.warn.Addf("runtime: %s: %d bytes, more than the limit of %d; skipped", p, f.Size(), MaxFileSize)
		return "", nil
	}
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", p, err)
	}
	defer rc.Close()
	v, err := Find(io.LimitReader(rc, MaxFileSize), re)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	if v, err = langpkg.Value(v); err != nil {
		return "", nil
	}
	return v, nil
}

// searchWithLibs searches the executable at p, then the layer's shared
// libraries that lib accepts (by base name), in path order.
func (l *layer) searchWithLibs(p string, re Pattern, lib func(base string) bool) (string, error) {
	v, err := l.search(p, re)
	if v != "" || err != nil {
		return v, err
	}
	var libs []string
	for q := range l.files {
		if lib(path.Base(q)) {
			libs = append(libs, q)
		}
	}
	sort.Strings(libs)
	for _, q := range libs {
		if v, err := l.search(q, re); v != "" || err != nil {
			return v, err
		}
	}
	return "", nil
}
