// Package ecosystem knows the language-package ecosystems that Clair's
// matchers recognise, and gives their packages what claircore's indexer gives
// them so that the matchers select and compare them:
//
//   - a repository record per ecosystem (claircore's "default repository" of
//     the ecosystem's package scanner): Clair's gobin matcher selects index
//     records whose repository URI is https://pkg.go.dev/; its java, nodejs
//     and ruby matchers those whose repository name is "maven", "npm" or
//     "rubygems";
//   - a normalized version where claircore computes one: "semver" for Go
//     modules and the Go standard library (gobin, whose matcher filters on
//     it in the database and nowhere else), and for npm packages; "pep440"
//     for Python packages (the python matcher selects records by this kind);
//     none for Maven and RubyGems, whose matchers compare the version string;
//   - the Go standard library's version as claircore writes it: "1.22.1",
//     not the toolchain's "go1.22.1";
//   - Python package names as claircore writes them, in lower case (the
//     matchers look names up as they are; claircore's OSV data for PyPI is
//     matched against its scanner's lower-case names).
//
// A normalized version is written as claircore writes it on the wire:
// "KIND:v0.v1.v2.v3.v4.v5.v6.v7.v8.v9", ten 32-bit integers. The integers
// follow claircore's rules exactly (claircore v1.5.54: gobin.ParseVersion,
// claircore.FromSemver over Masterminds/semver v1, pep440.Version), which
// compat/claircore checks against claircore's own functions.
//
// A package's ecosystem is read from its package URL's type, which every
// Stevedore language scanner sets.
package ecosystem

import (
	"strconv"
	"strings"

	"github.com/stevedore-dev/stevedore/report"
)

// Ecosystem is a language-package ecosystem.
type Ecosystem string

// The ecosystems Clair's matchers know (named after their repositories), and
// None for a package of none of them.
const (
	None  Ecosystem = ""
	Go    Ecosystem = "go"
	Maven Ecosystem = "maven"
	NPM   Ecosystem = "npm"
	PyPI  Ecosystem = "pypi"
	Gem   Ecosystem = "rubygems"
)

// stdlib is the name the Go scanner gives the standard library.
const stdlib = "stdlib"

// all lists the ecosystems, in a fixed order.
var all = []Ecosystem{Go, Maven, NPM, PyPI, Gem}

// All returns the ecosystems in a fixed order (a new slice each call).
func All() []Ecosystem { return append([]Ecosystem(nil), all...) }

// purlTypes maps a package URL type to its ecosystem.
var purlTypes = map[string]Ecosystem{
	"golang": Go,
	"maven":  Maven,
	"npm":    NPM,
	"pypi":   PyPI,
	"gem":    Gem,
}

// Of returns the ecosystem of a language package: one read from a file
// (Filepath set) whose package URL has the ecosystem's type. OS packages
// (dpkg, apk, rpm) and packages without a package URL have None.
func Of(p *report.Package) Ecosystem {
	if p == nil || p.Filepath == "" {
		return None
	}
	rest, ok := strings.CutPrefix(p.PURL, "pkg:")
	if !ok {
		return None
	}
	typ, _, ok := strings.Cut(rest, "/")
	if !ok {
		return None
	}
	return purlTypes[strings.ToLower(typ)]
}

// Repository returns the repository record claircore's indexer gives the
// packages of ecosystem e (its package scanner's default repository), with
// no id; nil for None or an unknown ecosystem.
func (e Ecosystem) Repository() *report.Repository {
	switch e {
	case Go:
		return &report.Repository{Name: "go", URI: "https://pkg.go.dev/"}
	case Maven:
		return &report.Repository{Name: "maven", URI: "https://repo1.maven.apache.org/maven2"}
	case NPM:
		return &report.Repository{Name: "npm", URI: "https://www.npmjs.com/"}
	case PyPI:
		return &report.Repository{Name: "pypi", URI: "https://pypi.org/simple"}
	case Gem:
		return &report.Repository{Name: "rubygems", URI: "https://rubygems.org/gems/"}
	}
	return nil
}

// Name returns a package's name as claircore writes it: a Python package's
// in lower case (claircore does not otherwise normalize it: "_" stays), any
// other unchanged.
func (e Ecosystem) Name(name string) string {
	if e == PyPI {
		return strings.ToLower(name)
	}
	return name
}

// Version returns the version of package name as claircore writes it: the Go
// standard library's toolchain version without its "go" prefix (and without
// a GOEXPERIMENT suffix); any other version unchanged.
func (e Ecosystem) Version(name, version string) string {
	if e == Go && name == stdlib {
		v, _, _ := strings.Cut(version, " ")
		return strings.TrimPrefix(v, "go")
	}
	return version
}

// NormalizedVersion returns the normalized version claircore computes for a
// package of ecosystem e with this version (as Version returns it), in
// claircore's wire form; "" when claircore computes none (Maven, RubyGems,
// a version that does not parse).
func (e Ecosystem) NormalizedVersion(version string) string {
	var v [10]int32
	var kind string
	var ok bool
	switch e {
	case Go:
		kind = "semver"
		v, ok = goSemver(version)
	case NPM:
		kind = "semver"
		v, ok = npmSemver(version)
	case PyPI:
		kind = "pep440"
		v, ok = pep440(version)
	}
	if !ok {
		return ""
	}
	return format(kind, v)
}

// format writes a normalized version as claircore's Version.MarshalText does.
func format(kind string, v [10]int32) string {
	b := make([]byte, 0, len(kind)+1+10*3)
	b = append(b, kind...)
	b = append(b, ':')
	for i, n := range v {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return string(b)
}
