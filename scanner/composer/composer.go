// Package composer finds the PHP packages that Composer installed, from the
// vendor/composer/installed.json it writes.
package composer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
)

// MaxFileSize bounds an installed.json (it holds every package's
// composer.json, descriptions included: a few MiB for a large Drupal site).
const MaxFileSize = 32 << 20

// MaxPackages bounds the packages read from one file.
const MaxPackages = 100_000

// Scanner reports the Composer packages of a layer's
// vendor/composer/installed.json files: Composer 1's (a JSON array of
// packages) and Composer 2's ({"packages": [...]}). Every package listed is
// installed, development packages ("dev-package-names") included, as Syft
// and Trivy report them.
//
// Each is a binary package named "vendor/name", with its version as written
// ("v1.8.1", "1.3.0", "dev-main"), Filepath and PackageDB both the
// installed.json path, and a PURL pkg:composer/VENDOR/NAME@VERSION.
//
// A file that cannot be used (not JSON, over MaxFileSize, a name that is not
// vendor/name, a missing version) is skipped with a warning in
// Result.Warnings.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "composer", version "1", a package scanner,
// file matching version "1".
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "composer", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"}
}

// Match reports whether p is composer/installed.json (in the vendor
// directory, whatever its name).
func (Scanner) Match(p string) bool {
	return path.Base(p) == "installed.json" && path.Base(path.Dir(p)) == "composer"
}

// Scan reads the matched files, in path order. Only an error opening or
// reading a file, or the context ending, is returned as an error.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	return langpkg.ScanWhole(ctx, "composer", files, MaxFileSize, ParseInstalled, func(p Package, path string) *report.Package {
		vendor, name, _ := strings.Cut(p.Name, "/")
		purl := packageurl.NewPackageURL(packageurl.TypeComposer, vendor, name, p.Version, nil, "").ToString()
		return langpkg.Package(p.Name, p.Version, path, purl)
	})
}

// ParseError is a file that cannot be used: it is skipped, the layer is not
// failed.
type ParseError = langpkg.ParseError

// Package is a package of an installed.json.
type Package struct {
	// Name is "vendor/name".
	Name, Version string
}

// ParseInstalled reads an installed.json, Composer 1's or 2's, and returns
// its packages in the file's order. A content problem is a *ParseError.
func ParseInstalled(b []byte) ([]Package, error) {
	type entry struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	var entries []entry
	b = bytes.TrimPrefix(b, []byte("\ufeff")) // a byte-order mark, which encoding/json refuses
	switch t := bytes.TrimLeft(b, " \t\r\n"); {
	case len(t) > 0 && t[0] == '[':
		if err := json.Unmarshal(b, &entries); err != nil {
			return nil, &ParseError{Reason: "not a Composer 1 installed.json", Err: err}
		}
	default:
		var v2 struct {
			Packages *[]entry `json:"packages"`
		}
		if err := json.Unmarshal(b, &v2); err != nil {
			return nil, &ParseError{Reason: "not a Composer installed.json", Err: err}
		}
		if v2.Packages == nil {
			return nil, &ParseError{Reason: `no "packages" array`}
		}
		entries = *v2.Packages
	}
	if len(entries) > MaxPackages {
		return nil, &ParseError{Reason: fmt.Sprintf("%d packages, more than the limit of %d", len(entries), MaxPackages)}
	}
	out := make([]Package, 0, len(entries))
	for i, e := range entries {
		n, err := langpkg.Value(e.Name)
		if err != nil {
			return nil, &ParseError{Reason: fmt.Sprintf("package %d: name", i), Err: err}
		}
		if vendor, name, ok := strings.Cut(n, "/"); !ok || vendor == "" || name == "" || strings.Contains(name, "/") {
			return nil, &ParseError{Reason: fmt.Sprintf("package %d: name %.100q is not vendor/name", i, n)}
		}
		v, err := langpkg.Value(e.Version)
		if err != nil {
			return nil, &ParseError{Reason: fmt.Sprintf("package %s: version", n), Err: err}
		}
		out = append(out, Package{Name: n, Version: v})
	}
	return out, nil
}
