// Package conda finds the packages of conda environments from the
// conda-meta/*.json records that conda (and mamba, micromamba, pixi) writes
// for each package it links into an environment.
package conda

import (
	"context"
	"encoding/json"
	"path"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
)

// MaxFileSize bounds a conda-meta record (it lists every file of its
// package with a checksum: a few MiB for the largest packages).
const MaxFileSize = 64 << 20

// Scanner reports the conda packages of a layer: one per
// conda-meta/NAME-VERSION-BUILD.json record, with the record's "name" and
// "version".
//
// Each is a binary package with Filepath and PackageDB both the record's
// path (a package removed from the environment takes its record with it),
// and a PURL as the purl specification's conda type says:
// pkg:conda/NAME@VERSION?build=BUILD&channel=CHANNEL&subdir=SUBDIR&type=TYPE,
// each qualifier when the record has it: the build string ("build"), the
// channel's name ("main" for https://repo.anaconda.com/pkgs/main,
// "conda-forge" for https://conda.anaconda.org/conda-forge, other channels'
// URLs as written, without the subdir), the platform subdirectory
// ("linux-64", "noarch") and the archive type ("conda" or "tar.bz2", from
// the file name "fn"). Trivy writes pkg:conda/NAME@VERSION; Syft gives conda
// packages no purl.
//
// A record that cannot be used (not JSON, over MaxFileSize, a missing name
// or version) is skipped with a warning in Result.Warnings.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "conda", version "1", a package scanner, file
// matching version "1".
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "conda", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"}
}

// Match reports whether p is a conda-meta/*.json record.
func (Scanner) Match(p string) bool {
	base := path.Base(p)
	return path.Base(path.Dir(p)) == "conda-meta" && strings.HasSuffix(base, ".json") && len(base) > len(".json")
}

// Scan reads the matched records, in path order. Only an error opening or
// reading a file, or the context ending, is returned as an error.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	parse := func(b []byte) ([]Record, error) {
		rec, err := ParseRecord(b)
		if err != nil {
			return nil, err
		}
		return []Record{rec}, nil
	}
	return langpkg.ScanWhole(ctx, "conda", files, MaxFileSize, parse, func(rec Record, path string) *report.Package {
		return langpkg.Package(rec.Name, rec.Version, path, rec.PURL())
	})
}

// ParseError is a file that cannot be used: it is skipped, the layer is not
// failed.
type ParseError = langpkg.ParseError

// Record is what the scanner reads of a conda-meta record.
type Record struct {
	Name, Version string
	// Build is the build string ("py38h06a4308_0"), Channel the channel
	// as written, Subdir the platform subdirectory, FileName the
	// package archive's name ("fn"); each may be empty.
	Build, Channel, Subdir, FileName string
}

// ParseRecord reads a conda-meta record. A content problem is a
// *ParseError.
func ParseRecord(b []byte) (Record, error) {
	var r struct {
		Name        string `json:"name"`
		Version     string `json:"version"`
		Build       string `json:"build"`
		BuildString string `json:"build_string"`
		Channel     string `json:"channel"`
		Subdir      string `json:"subdir"`
		FileName    string `json:"fn"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, &ParseError{Reason: "not a conda-meta record", Err: err}
	}
	n, err := langpkg.Value(r.Name)
	if err != nil {
		return Record{}, &ParseError{Reason: "name", Err: err}
	}
	v, err := langpkg.Value(r.Version)
	if err != nil {
		return Record{}, &ParseError{Reason: "version", Err: err}
	}
	rec := Record{Name: n, Version: v, Build: r.Build, Channel: r.Channel, Subdir: r.Subdir, FileName: r.FileName}
	if rec.Build == "" {
		rec.Build = r.BuildString
	}
	for _, q := range []*string{&rec.Build, &rec.Channel, &rec.Subdir, &rec.FileName} {
		if *q != "" {
			if _, err := langpkg.Value(*q); err != nil {
				*q = "" // an optional qualifier that is not a clean value is left out
			}
		}
	}
	return rec, nil
}

// PURL returns the record's package URL (see Scanner).
func (r Record) PURL() string {
	q := map[string]string{}
	if r.Build != "" {
		q["build"] = r.Build
	}
	if c := channelName(r.Channel, r.Subdir); c != "" {
		q["channel"] = c
	}
	if r.Subdir != "" {
		q["subdir"] = r.Subdir
	}
	switch {
	case strings.HasSuffix(r.FileName, ".conda"):
		q["type"] = "conda"
	case strings.HasSuffix(r.FileName, ".tar.bz2"):
		q["type"] = "tar.bz2"
	}
	return packageurl.NewPackageURL(packageurl.TypeConda, "", r.Name, r.Version, packageurl.QualifiersFromMap(q), "").ToString()
}

// channelName returns the name of a channel as conda writes it in a record:
// the URL without its subdir, and for Anaconda's own hosts the channel's
// name alone.
func channelName(channel, subdir string) string {
	c := strings.TrimRight(channel, "/")
	if subdir != "" {
		c = strings.TrimSuffix(c, "/"+subdir)
	}
	for _, prefix := range []string{"https://repo.anaconda.com/pkgs/", "https://conda.anaconda.org/"} {
		if rest, ok := strings.CutPrefix(c, prefix); ok && rest != "" {
			return rest
		}
	}
	return c
}
