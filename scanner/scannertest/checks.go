package scannertest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
)

// CheckInfoMatch checks that s.Info() is want and that s.Match gives, for
// each path of paths, the value paths holds for it.
func CheckInfoMatch(t *testing.T, s scanner.Scanner, want scanner.Info, paths map[string]bool) {
	t.Helper()
	if got := s.Info(); got != want {
		t.Errorf("Info() = %+v, want %+v", got, want)
	}
	for p, want := range paths {
		if got := s.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
}

// Scan scans files with s under a background context.
func Scan(s scanner.Scanner, files ...scanner.File) (*scanner.Result, error) {
	return s.Scan(context.Background(), files)
}

// Find returns the first package named name, nil when there is none.
func Find(pkgs []*report.Package, name string) *report.Package {
	for _, p := range pkgs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// LangFixture is a fixture holding one installed language package, at the
// path it has in an image, for CheckLangFixtures.
type LangFixture struct {
	// Fixture is the fixture's path under testdata/fixtures.
	Fixture string
	// Path is the layer path the file is given.
	Path string
	// Name, Version and PURL are the package's.
	Name, Version, PURL string
}

// CheckLangFixtures checks that s matches each fixture's path and finds,
// in it alone and with the others, one binary package with the fixture's
// name, version and PURL, whose Filepath and PackageDB are the path, and no
// warning.
func CheckLangFixtures(t *testing.T, s scanner.Scanner, cases []LangFixture) {
	t.Helper()
	var files []scanner.File
	for _, tc := range cases {
		if !s.Match(tc.Path) {
			t.Fatalf("%s not matched", tc.Path)
		}
		files = append(files, FromDisk(t, tc.Path, fixtures.Path(t, tc.Fixture)))
	}
	for i, tc := range cases {
		t.Run(tc.Fixture, func(t *testing.T) {
			res, err := s.Scan(context.Background(), files[i:i+1])
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) != 0 || len(res.Packages) != 1 {
				t.Fatalf("%d packages, warnings %q", len(res.Packages), res.Warnings)
			}
			if got, want := *res.Packages[0], tc.want(); got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	res, err := s.Scan(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 || len(res.Packages) != len(cases) {
		t.Fatalf("all together: %d packages, warnings %q", len(res.Packages), res.Warnings)
	}
	got := map[string]report.Package{}
	for _, p := range res.Packages {
		got[p.Filepath] = *p
	}
	for _, tc := range cases {
		if got[tc.Path] != tc.want() {
			t.Errorf("all together, %s:\n got  %+v\n want %+v", tc.Fixture, got[tc.Path], tc.want())
		}
	}
}

func (tc LangFixture) want() report.Package {
	return report.Package{Name: tc.Name, Version: tc.Version, Kind: report.KindBinary, PURL: tc.PURL, PackageDB: tc.Path, Filepath: tc.Path}
}

// BadFile is a file a scanner skips with a warning, for CheckBadFiles.
type BadFile struct {
	// Name names the case.
	Name string
	// Data is the file's content.
	Data string
	// Warn is a part of the warning expected.
	Warn string
}

// CheckBadFiles scans each case's data at badPath together with good, a
// file holding one package named goodName, and checks that the scan does
// not fail, finds the good package alone and warns once, naming badPath
// and holding the case's Warn.
func CheckBadFiles(t *testing.T, s scanner.Scanner, good scanner.File, goodName, badPath string, cases []BadFile) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			bad := File(badPath, []byte(tc.Data))
			res, err := s.Scan(context.Background(), []scanner.File{bad, good})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != 1 || res.Packages[0].Name != goodName {
				t.Errorf("packages %v", res.Packages)
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], badPath) || !strings.Contains(res.Warnings[0], tc.Warn) {
				t.Errorf("warnings %q, want one naming the file and %q", res.Warnings, tc.Warn)
			}
		})
	}
}

// Lang describes what a language-package scanner promises of any content,
// for CheckLangContent.
type Lang struct {
	// Scanner is the scanner under test.
	Scanner scanner.Scanner
	// Path is the layer path the content is given.
	Path string
	// PURLPrefix starts every PURL, as "pkg:npm/".
	PURLPrefix string
	// One is set when every file gives one package or one warning.
	One bool
	// Many is set when a file may give many packages (a lock file, an
	// installed-packages list): a file with a warning then gives none.
	Many bool
}

// CheckLangContent scans data at l.Path and checks that no content fails
// the scan (a bad file is a warning naming it), that there is at most one
// package (exactly one package or one warning with l.One; any number, and
// none with a warning, with l.Many), and that a
// package is a binary package with valid name and version
// (langpkg.Value), a PURL with l.PURLPrefix, and the file's path as its
// Filepath and PackageDB. It returns the result, for further checks.
func CheckLangContent(t *testing.T, l Lang, data []byte) *scanner.Result {
	t.Helper()
	res, err := l.Scanner.Scan(context.Background(), []scanner.File{File(l.Path, data)})
	if err != nil {
		t.Fatalf("content error is not a warning: %v", err)
	}
	switch {
	case l.One && len(res.Packages)+len(res.Warnings) != 1:
		t.Fatalf("%d packages, %d warnings", len(res.Packages), len(res.Warnings))
	case l.Many && len(res.Warnings) > 0 && len(res.Packages) > 0:
		t.Fatalf("warnings %q with %d packages", res.Warnings, len(res.Packages))
	case !l.Many && len(res.Packages) > 1:
		t.Fatalf("%d packages", len(res.Packages))
	}
	for _, w := range res.Warnings {
		if !strings.Contains(w, l.Path) {
			t.Fatalf("warning %q does not name the file", w)
		}
	}
	for _, p := range res.Packages {
		if _, err := langpkg.Value(p.Name); err != nil {
			t.Fatalf("name %q: %v", p.Name, err)
		}
		if _, err := langpkg.Value(p.Version); err != nil {
			t.Fatalf("version %q: %v", p.Version, err)
		}
		if !strings.HasPrefix(p.PURL, l.PURLPrefix) || p.Filepath != l.Path || p.PackageDB != l.Path || p.Kind != report.KindBinary {
			t.Fatalf("package %+v", p)
		}
	}
	return res
}

// Database describes a package-database scanner for CheckDatabaseContent.
type Database struct {
	// Scanner is the scanner under test.
	Scanner scanner.Scanner
	// Check returns a description of what is wrong with a package found,
	// "" when nothing is.
	Check func(p *report.Package) string
	// Same reports whether two packages, one found in a file with LF line
	// endings and one in the same file with CRLF, are the same.
	Same func(lf, crlf *report.Package) bool
}

// CheckDatabaseContent scans data at path and checks that an error names
// path, that every package passes d.Check, and, when data holds no "\r",
// that the same data with CRLF line endings gives the same packages.
func CheckDatabaseContent(t *testing.T, d Database, path string, data []byte) {
	t.Helper()
	res, err := d.Scanner.Scan(context.Background(), []scanner.File{File(path, data)})
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("error %q does not name %s", err, path)
		}
		return
	}
	for _, p := range res.Packages {
		if bad := d.Check(p); bad != "" {
			t.Fatalf("%s package %+v (source %+v)", bad, p, p.Source)
		}
	}
	if bytes.Contains(data, []byte("\r")) {
		return
	}
	crlf := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
	res2, err := d.Scanner.Scan(context.Background(), []scanner.File{File(path, crlf)})
	if err != nil {
		t.Fatalf("LF version parses, CRLF version: %v", err)
	}
	if len(res2.Packages) != len(res.Packages) {
		t.Fatalf("LF: %d packages, CRLF: %d", len(res.Packages), len(res2.Packages))
	}
	for i := range res.Packages {
		if a, b := res.Packages[i], res2.Packages[i]; !d.Same(a, b) {
			t.Fatalf("LF %+v != CRLF %+v", a, b)
		}
	}
}

// SeedTestdata adds every file of the package's testdata directory matching
// glob to the fuzz corpus of f. It fails the fuzz test when no file
// matches, so a fuzzer never runs unseeded by accident.
func SeedTestdata(f *testing.F, glob string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", glob, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzLang seeds f with the package's testdata files matching glob (see
// SeedTestdata) and fuzzes l's scanner with CheckLangContent.
func FuzzLang(f *testing.F, l Lang, glob string) {
	f.Helper()
	SeedTestdata(f, glob)
	f.Fuzz(func(t *testing.T, data []byte) {
		CheckLangContent(t, l, data)
	})
}

// Testdata is a file of the package's testdata directory, the layer path
// it is given, and the packages expected of it, for CheckTestdata.
type Testdata struct {
	// File is the file's name under testdata.
	File string
	// Path is the layer path the file is given.
	Path string
	// Want are the packages, each written by CheckTestdata's line, sorted.
	Want []string
	// Warn is a part of the one warning expected, which also names Path;
	// "": no warning.
	Warn string
}

// CheckTestdata scans each case's file, at its layer path, with s, in a
// subtest named after the file, and checks that the scan does not fail,
// that it warns as the case says (Warn), that every package is a binary package with the path as its
// Filepath and PackageDB, and that the packages, each written by line
// ("name version purl" when line is nil; line may report what else is wrong
// with a package on t) and sorted, are the case's Want.
func CheckTestdata(t *testing.T, s scanner.Scanner, cases []Testdata, line func(t *testing.T, p *report.Package) string) {
	t.Helper()
	if line == nil {
		line = func(_ *testing.T, p *report.Package) string { return p.Name + " " + p.Version + " " + p.PURL }
	}
	for _, tc := range cases {
		t.Run(tc.File, func(t *testing.T) {
			res, err := s.Scan(context.Background(), []scanner.File{FromDisk(t, tc.Path, filepath.Join("testdata", tc.File))})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.Warn == "" && len(res.Warnings) != 0:
				t.Errorf("warnings %q", res.Warnings)
			case tc.Warn != "" && (len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], tc.Warn) || !strings.Contains(res.Warnings[0], tc.Path)):
				t.Errorf("warnings %q, want one naming %s and holding %q", res.Warnings, tc.Path, tc.Warn)
			}
			var got []string
			for _, p := range res.Packages {
				if p.Filepath != tc.Path || p.PackageDB != tc.Path || p.Kind != report.KindBinary {
					t.Errorf("package %+v", p)
				}
				got = append(got, line(t, p))
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.Want) {
				t.Errorf("got  %q\nwant %q", got, tc.Want)
			}
		})
	}
}

// RepositoryLayer is a layer fixture and what a repository scanner finds
// in it, for CheckRepositoryLayers.
type RepositoryLayer struct {
	// Layer is the fixture's name under layers/.
	Layer string
	// Files are the paths the scanner matches in the layer, in order; nil:
	// not checked.
	Files []string
	// Want are the names of the repositories found, in order.
	Want []string
	// Warn is a part of the one warning expected; "": no warning.
	Warn string
}

// CheckRepositoryLayers reads each case's layer through the layer reader
// with s (ScanLayer) and checks the files s matched, the names of the
// repositories found, that each has key as its Key and no CPE, URI or ID,
// and the warnings.
func CheckRepositoryLayers(t *testing.T, s scanner.Scanner, key string, cases []RepositoryLayer) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Layer, func(t *testing.T) {
			res, paths := ScanLayer(t, s, "layers/"+tc.Layer)
			if tc.Files != nil && !slices.Equal(paths, tc.Files) {
				t.Errorf("matched %q, want %q", paths, tc.Files)
			}
			var got []string
			for _, r := range res.Repositories {
				if r.Key != key || r.CPE != "" || r.URI != "" || r.ID != "" {
					t.Errorf("repository %+v", r)
				}
				got = append(got, r.Name)
			}
			if !slices.Equal(got, tc.Want) {
				t.Errorf("repositories %q, want %q", got, tc.Want)
			}
			switch {
			case tc.Warn == "" && len(res.Warnings) > 0:
				t.Errorf("warnings %q", res.Warnings)
			case tc.Warn != "" && (len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], tc.Warn)):
				t.Errorf("warnings %q, want one holding %q", res.Warnings, tc.Warn)
			}
		})
	}
}

// ScanParsed scans data, at the layer path path, with s, for a fuzz target
// that also gives data to the scanner's parser, and checks that no content
// fails the scan. When parseErr, what the parser said of data, is not nil,
// it checks that the scan gave one warning naming path and no repository,
// and returns nil: the caller has nothing more to check. Otherwise it
// returns the result.
func ScanParsed(t *testing.T, s scanner.Scanner, path string, data []byte, parseErr error) *scanner.Result {
	t.Helper()
	res, err := s.Scan(context.Background(), []scanner.File{File(path, data)})
	if err != nil {
		t.Fatalf("Scan error %v: bad content is a warning", err)
	}
	if parseErr == nil {
		return res
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], path) || len(res.Repositories) != 0 {
		t.Fatalf("parse error %v but Scan gave %+v", parseErr, res)
	}
	return nil
}

// RepositoryScan is a case of CheckRepositoryScans: files scanned together,
// and the repositories and warnings expected.
type RepositoryScan struct {
	// Name names the case.
	Name string
	// Files are the files scanned.
	Files []scanner.File
	// Want are the repositories found, in order, each written by
	// CheckRepositoryScans's view.
	Want []string
	// Warns are the warnings expected, in order: each holds the string of
	// the same index.
	Warns []string
}

// CheckRepositoryScans scans each case's files with s, in a subtest named
// after the case, and checks that the scan does not fail, that the
// repositories, each written by view (which may report on t what else is
// wrong with one), are the case's Want, and that the warnings are as many
// as its Warns, each holding the one of its index; warn, when not nil,
// checks each warning further.
func CheckRepositoryScans(t *testing.T, s scanner.Scanner, cases []RepositoryScan, view func(t *testing.T, r *report.Repository) string, warn func(t *testing.T, w string)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			res, err := s.Scan(context.Background(), tc.Files)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res.Repositories {
				got = append(got, view(t, r))
			}
			if !slices.Equal(got, tc.Want) {
				t.Errorf("repositories %q, want %q", got, tc.Want)
			}
			if len(res.Warnings) != len(tc.Warns) {
				t.Fatalf("warnings %q, want %d", res.Warnings, len(tc.Warns))
			}
			for i, w := range tc.Warns {
				if !strings.Contains(res.Warnings[i], w) {
					t.Errorf("warning %q, want one with %q", res.Warnings[i], w)
				}
				if warn != nil {
					warn(t, res.Warnings[i])
				}
			}
		})
	}
}
