// Package npm finds the JavaScript packages installed in node_modules
// directories, from each package's own package.json.
package npm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
)

// MaxFileSize is the largest package.json read. Installed manifests are
// small (old npm versions added the README to them: tens of KiB); a larger
// one is skipped with a warning.
const MaxFileSize = 8 << 20

// Scanner reports the packages installed in node_modules directories.
//
// It reads node_modules/NAME/package.json and
// node_modules/@SCOPE/NAME/package.json, at any depth (nested node_modules
// included), and nothing else: an application's own package.json is not
// under node_modules, and the package.json files deeper inside a package
// (test fixtures, sub-path exports) are not packages.
//
// Each package is a binary package with the manifest's name and version, a
// PURL pkg:npm/<name>@<version> (a scoped name "@scope/name" gives the
// namespace "@scope", written %40scope), and Filepath and PackageDB both
// the package.json's path (the coalescer keeps one package per PackageDB, so
// the manifest itself is the database).
//
// A manifest without a name or a version is skipped: quietly when it says
// "private": true (a workspace link, never published), with a warning
// otherwise. So are, with a warning, manifests that are not JSON objects,
// over MaxFileSize, or whose name or version is not a string or not a valid
// value (langpkg.Value).
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "npm", version "1", a package scanner.
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "npm", Version: "1", Kind: scanner.KindPackage}
}

// Match reports whether path is the package.json of a package directly under
// a node_modules directory.
func (Scanner) Match(path string) bool {
	rest, ok := strings.CutSuffix(path, "/package.json")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	n := len(parts)
	switch {
	case n >= 2 && parts[n-2] == "node_modules":
		return isPackageDir(parts[n-1]) && !strings.HasPrefix(parts[n-1], "@")
	case n >= 3 && parts[n-3] == "node_modules":
		return strings.HasPrefix(parts[n-2], "@") && len(parts[n-2]) > 1 && isPackageDir(parts[n-1]) && !strings.HasPrefix(parts[n-1], "@")
	}
	return false
}

func isPackageDir(name string) bool {
	return name != "" && name != "node_modules" && !strings.HasPrefix(name, ".")
}

// Scan reads the matched manifests, in path order. Only an error opening or
// reading a file, or the context ending, is returned as an error.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	return langpkg.Scan(ctx, "npm", files, MaxFileSize, read)
}

// read reads one manifest; one that cannot be used is skipped, quietly when
// it is a private one without a name or version.
func read(f scanner.File, _ *langpkg.Warnings) ([]*report.Package, error) {
	data, err := langpkg.ReadAll("npm", f, MaxFileSize)
	if err != nil {
		return nil, langpkg.SkipParse(err)
	}
	m, err := ParseManifest(data)
	switch {
	case err != nil:
		return nil, langpkg.Skip(err)
	case (m.Name == "" || m.Version == "") && m.Private:
		return nil, nil
	case m.Name == "" || m.Version == "":
		return nil, langpkg.Skip(errors.New("no name or no version, and not private"))
	}
	return []*report.Package{newPackage(m, f.Path())}, nil
}

func newPackage(m Manifest, path string) *report.Package {
	ns, name := "", m.Name
	if scope, rest, ok := strings.Cut(m.Name, "/"); ok && strings.HasPrefix(scope, "@") {
		ns, name = scope, rest
	}
	purl := packageurl.NewPackageURL(packageurl.TypeNPM, ns, name, m.Version, nil, "").ToString()
	return langpkg.Package(m.Name, m.Version, path, purl)
}

// Manifest is what the scanner reads of a package.json.
type Manifest struct {
	// Name and Version are "" when absent (or null).
	Name, Version string
	// Private is the "private" field; false when absent or not a boolean.
	Private bool
}

// ParseManifest reads a package.json: a JSON object whose "name" and
// "version" are strings (or absent, or null: then ""). A name, when present,
// must be a valid value (langpkg.Value) of at most 214 bytes with at most
// one "/", as "@scope/name"; a version must be a valid value. It fails when
// the data is not a JSON object or a field does not fit; the other fields of
// the manifest are not looked at beyond being valid JSON.
func ParseManifest(data []byte) (Manifest, error) {
	var raw struct {
		Name    json.RawMessage `json:"name"`
		Version json.RawMessage `json:"version"`
		Private json.RawMessage `json:"private"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Manifest{}, fmt.Errorf("not a JSON object: %w", err)
	}
	var m Manifest
	var err error
	if m.Name, err = stringField("name", raw.Name); err != nil {
		return Manifest{}, err
	}
	if m.Version, err = stringField("version", raw.Version); err != nil {
		return Manifest{}, err
	}
	if m.Name != "" {
		if len(m.Name) > 214 {
			return Manifest{}, fmt.Errorf("name: %d bytes, more than npm's 214", len(m.Name))
		}
		scope, rest, scoped := strings.Cut(m.Name, "/")
		switch {
		case scoped && (!strings.HasPrefix(scope, "@") || len(scope) < 2 || rest == "" || strings.Contains(rest, "/")):
			return Manifest{}, fmt.Errorf("name %.60q: a name with a slash must be @scope/name", m.Name)
		case !scoped && strings.HasPrefix(m.Name, "@"):
			return Manifest{}, fmt.Errorf("name %.60q: a scope without a name", m.Name)
		}
	}
	var private bool
	if json.Unmarshal(raw.Private, &private) == nil {
		m.Private = private
	}
	return m, nil
}

// stringField decodes a string field, "" when absent or null, and checks it.
func stringField(key string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s: not a string: %.40s", key, raw)
	}
	if s == "" {
		return "", nil
	}
	v, err := langpkg.Value(s)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return v, nil
}
