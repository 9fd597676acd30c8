// Package dotnet finds the NuGet packages of .NET applications from their
// *.deps.json files, which the .NET SDK writes next to an application's
// assemblies and the runtime reads to load them.
package dotnet

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
)

// MaxFileSize bounds a deps.json (a large application's is a few hundred
// KiB).
const MaxFileSize = 16 << 20

// MaxLibraries bounds the libraries read from one file.
const MaxLibraries = 100_000

// runtimePackPrefix is the prefix the .NET SDK gives the runtime bundled in
// a self-contained application ("runtimepack.Microsoft.NETCore.App.Runtime.linux-x64").
const runtimePackPrefix = "runtimepack."

// Scanner reports the .NET libraries of a layer's *.deps.json files.
//
// The libraries reported are those of type "package" (NuGet packages),
// "project" (the application and the projects it references, as Trivy,
// Syft and osv-scalibr report them) and "runtimepack" (the .NET runtime of a
// self-contained application, named without the "runtimepack." prefix) that
// the runtime target (runtimeTarget.name, a key of "targets") deploys: those
// whose entry there has "runtime", "runtimeTargets" or "native" assets, and
// those missing from the target; every such library when the file has no
// such target. This is Trivy's rule: a package referenced only at compile
// time (a reference assembly, or a package the shared framework supersedes,
// such as System.Diagnostics.DiagnosticSource 6.0.0 on .NET 6) has no
// assets in the target and is not in the image.
//
// Each is a binary package with Filepath and PackageDB both the deps.json
// path and a PURL pkg:nuget/NAME@VERSION (the name as written: NuGet ids are
// case-insensitive, the purl keeps their case, as Syft and Trivy do).
//
// A file that cannot be used (not JSON, over MaxFileSize, a bad name or
// version) is skipped with a warning in Result.Warnings.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "dotnet", version "1", a package scanner,
// file matching version "1".
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "dotnet", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"}
}

// Match reports whether path is a NAME.deps.json file.
func (Scanner) Match(p string) bool {
	b := path.Base(p)
	return strings.HasSuffix(b, ".deps.json") && len(b) > len(".deps.json")
}

// Scan reads the matched files, in path order. Only an error opening or
// reading a file, or the context ending, is returned as an error.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	return langpkg.ScanWhole(ctx, "dotnet", files, MaxFileSize, ParseDeps, func(l Library, path string) *report.Package {
		purl := packageurl.NewPackageURL(packageurl.TypeNuget, "", l.Name, l.Version, nil, "").ToString()
		return langpkg.Package(l.Name, l.Version, path, purl)
	})
}

// ParseError is a file that cannot be used: it is skipped, the layer is not
// failed.
type ParseError = langpkg.ParseError

// Library is a library of a deps.json that the application deploys.
type Library struct {
	Name, Version string
	// Type is the library's type: "package", "project" or
	// "runtimepack" (in lower case).
	Type string
}

// ParseDeps reads a deps.json and returns the libraries the scanner reports
// (see Scanner), sorted by name and version. A content problem is a
// *ParseError.
func ParseDeps(b []byte) ([]Library, error) {
	var deps struct {
		RuntimeTarget struct {
			Name string `json:"name"`
		} `json:"runtimeTarget"`
		Targets   map[string]map[string]json.RawMessage `json:"targets"`
		Libraries map[string]struct {
			Type string `json:"type"`
		} `json:"libraries"`
	}
	if err := json.Unmarshal(b, &deps); err != nil {
		return nil, &ParseError{Reason: "not a deps.json", Err: err}
	}
	if len(deps.Libraries) > MaxLibraries {
		return nil, &ParseError{Reason: fmt.Sprintf("%d libraries, more than the limit of %d", len(deps.Libraries), MaxLibraries)}
	}
	target, haveTarget := deps.Targets[deps.RuntimeTarget.Name]
	var out []Library
	for key, lib := range deps.Libraries {
		typ := strings.ToLower(lib.Type)
		if typ != "package" && typ != "project" && typ != "runtimepack" {
			continue
		}
		if haveTarget {
			if entry, ok := target[key]; ok && !deploys(entry) {
				continue
			}
		}
		name, version, ok := strings.Cut(key, "/")
		if !ok {
			return nil, &ParseError{Reason: fmt.Sprintf("library %.100q: not NAME/VERSION", key)}
		}
		name = strings.TrimPrefix(name, runtimePackPrefix)
		n, err := langpkg.Value(name)
		if err != nil {
			return nil, &ParseError{Reason: fmt.Sprintf("library %.100q: name", key), Err: err}
		}
		v, err := langpkg.Value(version)
		if err != nil {
			return nil, &ParseError{Reason: fmt.Sprintf("library %.100q: version", key), Err: err}
		}
		out = append(out, Library{Name: n, Version: v, Type: typ})
	}
	slices.SortFunc(out, func(a, b Library) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Type, b.Type))
	})
	return slices.Compact(out), nil
}

// deploys reports whether a target entry has runtime, runtimeTargets or
// native assets (a non-empty object or array). An entry that is not an
// object deploys nothing.
func deploys(entry json.RawMessage) bool {
	var e struct {
		Runtime        json.RawMessage `json:"runtime"`
		RuntimeTargets json.RawMessage `json:"runtimeTargets"`
		Native         json.RawMessage `json:"native"`
	}
	if json.Unmarshal(entry, &e) != nil {
		return false
	}
	return nonEmpty(e.Runtime) || nonEmpty(e.RuntimeTargets) || nonEmpty(e.Native)
}

func nonEmpty(v json.RawMessage) bool {
	s := strings.TrimSpace(string(v))
	switch s {
	case "", "null", "{}", "[]", `""`, "false", "0":
		return false
	}
	if (strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")) && strings.TrimSpace(s[1:len(s)-1]) == "" {
		return false
	}
	return true
}
