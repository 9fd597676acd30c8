// Package python finds installed Python distributions from their core
// metadata: *.dist-info/METADATA (wheels, pip), *.egg-info/PKG-INFO and
// single-file *.egg-info (setuptools, Debian's python3-* packages), and
// EGG-INFO/PKG-INFO of eggs, unzipped or zipped (*.egg files).
package python

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/internal/randaccess"
	"github.com/stevedore-dev/stevedore/scanner/internal/zipdir"
)

// MaxHeaderBytes bounds what is read of one metadata file: the headers end at
// the first blank line, and Name and Version come first in practice; the
// description that may follow (hundreds of MiB in a hostile file) is never
// read.
const MaxHeaderBytes = 1 << 20

// Limits on a zipped egg (a zip archive): its size, and its central
// directory's entries and bytes, checked before archive/zip reads it. Its
// EGG-INFO/PKG-INFO is read as any metadata file, up to MaxHeaderBytes.
const (
	MaxEggSize           = 256 << 20
	MaxEggEntries        = 100_000
	MaxEggDirectoryBytes = 16 << 20
)

// eggPKGINFO is the metadata file of a zipped egg.
const eggPKGINFO = "EGG-INFO/PKG-INFO"

// maxLine bounds one header line kept in memory; longer lines (a long
// Description continuation) are skipped, and count against MaxHeaderBytes.
const maxLine = 64 << 10

// Scanner reports the Python distributions installed in a layer.
//
// Each package is a binary package with the Name and Version of its metadata
// file's headers, as written there ("Flask", "2.0.0"), and a PURL
// pkg:pypi/<name>@<version> with the name normalised as PEP 503 says
// (lowercase, runs of "-", "_" and "." made one "-").
//
// Filepath and PackageDB are both the metadata file's path (a zipped egg's
// own path). PackageDB is not
// the site-packages directory: the coalescer keeps, per PackageDB, only the
// packages of the topmost layer that has it, so a directory shared by
// several layers would hide the packages installed by the lower ones; the
// metadata file is one package's own database, replaced or deleted with it.
//
// A file that cannot be used (no Name or Version in its headers, a value that
// is not valid UTF-8 or holds blanks or control characters) is skipped with a
// warning in Result.Warnings; it does not fail the layer.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "python", version "2", a package scanner.
// Version 2 reads zipped eggs.
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "python", Version: "2", Kind: scanner.KindPackage}
}

// Match reports whether path is a Python core-metadata file of an installed
// distribution: ".../NAME.dist-info/METADATA", ".../NAME.egg-info/PKG-INFO",
// ".../NAME.egg-info" (a file), ".../EGG-INFO/PKG-INFO", or ".../NAME.egg"
// (a file: a zipped egg). A PKG-INFO elsewhere (a source tree) is not an
// installed distribution.
func (Scanner) Match(path string) bool {
	dir, base := splitPath(path)
	switch base {
	case "METADATA":
		return strings.HasSuffix(dir, ".dist-info") && len(lastElem(dir)) > len(".dist-info")
	case "PKG-INFO":
		d := lastElem(dir)
		return d == "EGG-INFO" || (strings.HasSuffix(d, ".egg-info") && len(d) > len(".egg-info"))
	}
	return (strings.HasSuffix(base, ".egg-info") && len(base) > len(".egg-info")) ||
		(strings.HasSuffix(base, ".egg") && len(base) > len(".egg"))
}

func splitPath(p string) (dir, base string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

func lastElem(dir string) string {
	_, b := splitPath(dir)
	return b
}

// Scan reads the matched metadata files, in path order. Only an error
// opening or reading a file, or the context ending, is returned as an error.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	return langpkg.Scan(ctx, "python", files, 0, read)
}

// read reads one metadata file or zipped egg; a file that cannot be used is
// skipped.
func read(f scanner.File, _ *langpkg.Warnings) ([]*report.Package, error) {
	var md Metadata
	var err error
	if strings.HasSuffix(f.Path(), ".egg") {
		md, err = readEgg(f)
	} else {
		md, err = readFile(f)
	}
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			return nil, langpkg.Skip(err)
		}
		return nil, err
	}
	return []*report.Package{newPackage(md, f.Path())}, nil
}

// readFile reads one metadata file.
func readFile(f scanner.File) (Metadata, error) {
	rc, err := f.Open()
	if err != nil {
		return Metadata{}, fmt.Errorf("python: opening %s: %w", f.Path(), err)
	}
	defer rc.Close()
	md, err := ParseMetadata(rc)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			return Metadata{}, err
		}
		return Metadata{}, fmt.Errorf("python: reading %s: %w", f.Path(), err)
	}
	return md, nil
}

// readEgg reads the EGG-INFO/PKG-INFO of a zipped egg. A file that is not a
// usable zip archive, or has no such member, is a *ParseError.
func readEgg(f scanner.File) (Metadata, error) {
	if f.Size() > MaxEggSize {
		return Metadata{}, &ParseError{Reason: fmt.Sprintf("%d bytes, more than the limit of %d for an egg", f.Size(), MaxEggSize)}
	}
	ra, err := randaccess.Open(f, MaxEggSize, "")
	if errors.Is(err, randaccess.ErrTooLarge) {
		return Metadata{}, &ParseError{Reason: "egg", Err: err}
	}
	if err != nil {
		return Metadata{}, fmt.Errorf("python: %w", err)
	}
	defer ra.Close()
	if err := zipdir.Check(ra, ra.Size, MaxEggEntries, MaxEggDirectoryBytes); err != nil {
		return Metadata{}, &ParseError{Reason: "egg", Err: err}
	}
	zr, err := zip.NewReader(ra, ra.Size)
	if err != nil {
		return Metadata{}, &ParseError{Reason: "egg: not a zip archive", Err: err}
	}
	for _, zf := range zr.File {
		if zf.Name != eggPKGINFO {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return Metadata{}, &ParseError{Reason: "egg: " + eggPKGINFO, Err: err}
		}
		defer rc.Close()
		md, err := ParseMetadata(rc)
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			// Inflating the member failed: the archive is corrupt.
			return Metadata{}, &ParseError{Reason: "egg: " + eggPKGINFO, Err: err}
		}
		return md, err
	}
	return Metadata{}, &ParseError{Reason: "egg: no " + eggPKGINFO}
}

func newPackage(md Metadata, path string) *report.Package {
	purl := packageurl.NewPackageURL(packageurl.TypePyPi, "", NormalizeName(md.Name), md.Version, nil, "").ToString()
	return langpkg.Package(md.Name, md.Version, path, purl)
}

var separators = regexp.MustCompile(`[-_.]+`)

// NormalizeName returns a distribution name normalised as PEP 503 says:
// lowercase, with each run of "-", "_" and "." replaced by one "-".
func NormalizeName(name string) string {
	return strings.ToLower(separators.ReplaceAllString(name, "-"))
}

// Metadata is what the scanner reads of a core-metadata file.
type Metadata struct {
	Name    string
	Version string
}

// ParseError is a metadata file that cannot be used: the file is skipped,
// the layer is not failed.
type ParseError = langpkg.ParseError

// ParseMetadata reads the headers of a Python core-metadata file (METADATA,
// PKG-INFO: RFC 822 style "Name: value" lines, continuation lines starting
// with a blank) up to the first blank line, a line that is not a header, or
// MaxHeaderBytes, whichever comes first, and returns the first Name and
// Version. Header names are case-insensitive. It fails with a *ParseError
// when either is missing or not a valid value (see langpkg.Value), and with
// the reader's error when reading fails.
func ParseMetadata(r io.Reader) (Metadata, error) {
	br := bufio.NewReaderSize(&io.LimitedReader{R: r, N: MaxHeaderBytes}, maxLine)
	var md Metadata
	var name, version string
	var haveName, haveVersion bool
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		long := false
		if err == bufio.ErrBufferFull {
			// Longer than maxLine: keep its start, skip the rest.
			long = true
			b = bytes.Clone(b)
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
		}
		if err != nil && err != io.EOF {
			return Metadata{}, err
		}
		text := bytes.TrimRight(b, "\r\n")
		switch {
		case len(b) > 0 && len(text) == 0:
			// The empty line that ends the headers.
			return md.check(name, version, haveName, haveVersion)
		case len(text) > 0 && (text[0] == ' ' || text[0] == '\t'):
			// A continuation of the previous header (Description,
			// License): not a field the scanner reads.
		case len(text) > 0:
			key, val, ok := bytes.Cut(text, []byte(":"))
			if !ok || len(key) == 0 || bytes.ContainsAny(key, " \t") {
				// Not a header: the body starts here.
				return md.check(name, version, haveName, haveVersion)
			}
			switch strings.ToLower(string(key)) {
			case "name":
				if !haveName {
					haveName = true
					if long {
						return Metadata{}, &ParseError{Reason: fmt.Sprintf("line %d: Name longer than %d bytes", line, maxLine)}
					}
					name = string(val)
				}
			case "version":
				if !haveVersion {
					haveVersion = true
					if long {
						return Metadata{}, &ParseError{Reason: fmt.Sprintf("line %d: Version longer than %d bytes", line, maxLine)}
					}
					version = string(val)
				}
			}
		}
		if err == io.EOF {
			return md.check(name, version, haveName, haveVersion)
		}
	}
}

// check validates the Name and Version read.
func (md Metadata) check(name, version string, haveName, haveVersion bool) (Metadata, error) {
	if !haveName {
		return Metadata{}, &ParseError{Reason: fmt.Sprintf("no Name header (read up to the first empty line, at most %d bytes)", MaxHeaderBytes)}
	}
	if !haveVersion {
		return Metadata{}, &ParseError{Reason: fmt.Sprintf("no Version header (read up to the first empty line, at most %d bytes)", MaxHeaderBytes)}
	}
	var err error
	if md.Name, err = langpkg.Value(name); err != nil {
		return Metadata{}, &ParseError{Reason: "Name", Err: err}
	}
	if md.Version, err = langpkg.Value(version); err != nil {
		return Metadata{}, &ParseError{Reason: "Version", Err: err}
	}
	return md, nil
}
