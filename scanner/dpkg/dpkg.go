// Package dpkg finds the packages installed by dpkg: those in
// var/lib/dpkg/status and in the per-package files distroless images keep
// in var/lib/dpkg/status.d/, and the files they own that a language scanner
// could also report (from var/lib/dpkg/info/*.list).
package dpkg

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
	"github.com/stevedore-dev/stevedore/scanner/internal/owned"
)

// MaxFileSize is the largest status file Scan reads. The status file of a
// large desktop install is a few MiB.
const MaxFileSize = 64 << 20

// MaxListSize is the largest var/lib/dpkg/info/*.list file Scan reads; a
// larger one is skipped with a warning. The largest real ones (TeX Live's
// documentation packages) are a few MiB.
const MaxListSize = 32 << 20

const (
	statusFile = "var/lib/dpkg/status"
	statusDir  = "var/lib/dpkg/status.d/"
	infoDir    = "var/lib/dpkg/info/"
)

// Scanner reports the packages dpkg has installed.
//
// Every installed package is a binary package with Name, Version, Arch
// (Architecture), PackageDB (the path of the file it came from), a PURL,
// and a Source: the source package named by the Source field, with the
// version in parentheses there or else the binary package's version; with no
// Source field the source package has the binary package's name and version.
// In status.d files a stanza without Status counts as installed; in
// var/lib/dpkg/status it counts as not installed, as dpkg reads it. Parse
// documents what is installed and what is an error.
//
// dpkg does not record the distribution, so the PURL namespace is "ubuntu"
// when the layer's base-files package has "ubuntu" in its version (as every
// Ubuntu release's has), and "debian" otherwise: for example
// pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64. Source packages get
// arch=source, as the PURL spec does for deb.
//
// Result.OwnedFiles lists the files that the layer's var/lib/dpkg/info/*.list
// files say installed packages own and that a language scanner could also
// report (owned.Relevant; dpkg does not record whether an entry is a file or
// a directory, so every entry counts as a possible file). A .list file counts
// when its package (the name before ".list" and any ":arch") is installed in
// the layer's status files, or when the layer has no status file at all.
// Paths under bin, sbin and lib* are also recorded under usr/ (merged /usr:
// Debian's packages ship /bin/ls, the layer has usr/bin/ls). Distroless
// images keep no .list files, so their ownership is unknown.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "dpkg", version "3", a package scanner.
// Version 2 added the owned files; version 3 records those of the Rust,
// .NET, PHP, conda and zipped-egg scanners too (owned.Relevant).
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "dpkg", Version: "3", Kind: scanner.KindPackage}
}

// Match reports whether path is var/lib/dpkg/status, a file directly in
// var/lib/dpkg/status.d/ other than a *.md5sums file, or a *.list file
// directly in var/lib/dpkg/info/.
func (Scanner) Match(path string) bool {
	if path == statusFile {
		return true
	}
	if name, ok := strings.CutPrefix(path, infoDir); ok {
		return len(name) > len(".list") && strings.HasSuffix(name, ".list") && !strings.Contains(name, "/")
	}
	name, ok := strings.CutPrefix(path, statusDir)
	return ok && name != "" && !strings.Contains(name, "/") && !strings.HasSuffix(name, ".md5sums")
}

// Scan parses the matched status files, in path order, and returns their
// installed packages in file order, then reads the .list files of the
// installed packages for Result.OwnedFiles. A status file over MaxFileSize
// or that Parse rejects is an error naming it; a .list file that cannot be
// read is skipped with a warning (ownership only removes duplicates).
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	var lists []scanner.File
	files = slices.DeleteFunc(slices.Clone(files), func(f scanner.File) bool {
		if strings.HasPrefix(f.Path(), infoDir) {
			lists = append(lists, f)
			return true
		}
		return false
	})
	all, err := limitio.ParseFiles(ctx, "dpkg", files, parseFile)
	if err != nil {
		return nil, err
	}
	namespace := "debian"
	for _, p := range all {
		for _, e := range p.Value {
			if e.Name == "base-files" && strings.Contains(e.Version, "ubuntu") {
				namespace = "ubuntu"
			}
		}
	}
	res := &scanner.Result{}
	var installed map[string]bool // nil: no status file, every .list counts
	if len(all) > 0 {
		installed = map[string]bool{}
	}
	for _, p := range all {
		for _, e := range p.Value {
			res.Packages = append(res.Packages, newPackage(e, p.Path, namespace))
			installed[e.Name] = true
		}
	}
	if err := ownedFiles(ctx, lists, installed, res); err != nil {
		return nil, err
	}
	return res, nil
}

// ownedFiles fills res.OwnedFiles from the .list files of installed packages
// (of all of them when installed is nil).
func ownedFiles(ctx context.Context, lists []scanner.File, installed map[string]bool, res *scanner.Result) error {
	seen := map[string]bool{}
	sort.Slice(lists, func(i, j int) bool { return lists[i].Path() < lists[j].Path() })
	for _, f := range lists {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("dpkg: %w", err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(f.Path(), infoDir), ".list")
		name, _, _ = strings.Cut(name, ":")
		if installed != nil && !installed[name] {
			continue
		}
		if err := readList(f, seen); err != nil {
			res.Warnings = append(res.Warnings, err.Error())
		}
		if len(seen) >= owned.MaxFiles {
			res.Warnings = append(res.Warnings, fmt.Sprintf("dpkg: more than %d owned files; the rest are not recorded", owned.MaxFiles))
			break
		}
	}
	res.OwnedFiles = make([]string, 0, len(seen))
	for p := range seen {
		res.OwnedFiles = append(res.OwnedFiles, p)
	}
	slices.Sort(res.OwnedFiles)
	return nil
}

// readList adds the relevant paths of one .list file (one absolute path a
// line) to seen. The error says why the file was skipped.
func readList(f scanner.File, seen map[string]bool) error {
	if f.Size() > MaxListSize {
		return fmt.Errorf("dpkg: skipping %s: size %d bytes exceeds the limit of %d", f.Path(), f.Size(), MaxListSize)
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("dpkg: skipping %s: %w", f.Path(), err)
	}
	defer rc.Close()
	lr := limitio.NewReader(rc, MaxListSize)
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var add []string
	for sc.Scan() {
		line := sc.Text()
		if strings.IndexByte(line, 0) >= 0 {
			return fmt.Errorf("dpkg: skipping %s: NUL byte: not a dpkg file list", f.Path())
		}
		p, ok := owned.Clean(line)
		if !ok || !owned.Relevant(p, true) {
			continue
		}
		add = append(add, owned.Aliases(p)...)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("dpkg: skipping %s: %w", f.Path(), err)
	}
	for _, p := range add {
		if len(seen) >= owned.MaxFiles {
			break
		}
		seen[p] = true
	}
	return nil
}

func parseFile(ctx context.Context, f scanner.File) ([]Entry, error) {
	opts := ParseOptions{MissingStatusInstalled: strings.HasPrefix(f.Path(), statusDir)}
	return limitio.ParseFile("dpkg", f, MaxFileSize, func(r io.Reader) ([]Entry, error) { return Parse(ctx, r, opts) })
}

func newPackage(e Entry, db, namespace string) *report.Package {
	var q packageurl.Qualifiers
	if e.Arch != "" {
		q = packageurl.Qualifiers{{Key: "arch", Value: e.Arch}}
	}
	return &report.Package{
		Name:      e.Name,
		Version:   e.Version,
		Kind:      report.KindBinary,
		Arch:      e.Arch,
		PackageDB: db,
		PURL:      packageurl.NewPackageURL(packageurl.TypeDebian, namespace, e.Name, e.Version, q, "").ToString(),
		Source: &report.Package{
			Name:    e.SourceName,
			Version: e.SourceVersion,
			Kind:    report.KindSource,
			PURL: packageurl.NewPackageURL(packageurl.TypeDebian, namespace, e.SourceName, e.SourceVersion,
				packageurl.Qualifiers{{Key: "arch", Value: "source"}}, "").ToString(),
		},
	}
}
