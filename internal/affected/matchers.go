package affected

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	gem "github.com/aquasecurity/go-gem-version"
	npm "github.com/aquasecurity/go-npm-version/pkg"
	pep440 "github.com/aquasecurity/go-pep440-version"
	apk "github.com/knqyf263/go-apk-version"
	"github.com/knqyf263/go-cpe/common"
	"github.com/knqyf263/go-cpe/matching"
	"github.com/knqyf263/go-cpe/naming"
	deb "github.com/knqyf263/go-deb-version"
	rpm "github.com/knqyf263/go-rpm-version"
	mvn "github.com/masahiro331/go-mvn-version"
	"golang.org/x/mod/semver"
)

// Record is one installed package as claircore's matchers see it: the
// package with one distribution and one repository of one of its
// environments (either may be nil).
type Record struct {
	Package *Package
	Dist    *Distribution
	Repo    *Repository
}

// constraint is one of claircore's match constraints: a field of the
// vulnerability that the record must have equal (and the vulnerability
// non-empty, else the matcher does not apply).
type constraint int

const (
	distDID constraint = iota
	distName
	distVersionID
	distPrettyName
	repoName
	repoKey
	packageModule
)

// matcher is one ecosystem's decision, modelled on a claircore matcher:
// the constraints it queries with, its Filter on records, and its
// Vulnerable with the ecosystem's version comparison.
type matcher struct {
	name        string
	constraints []constraint
	filter      func(*Record) bool
	vulnerable  func(*Record, *Vulnerability) (bool, error)
}

// Claircore's repository names and keys (see its gobin, java, nodejs,
// python, ruby and rhel packages).
const (
	goRepoURI     = "https://pkg.go.dev/"
	rhelRepoKey   = "rhel-cpe-repository"
	mavenRepoName = "maven"
	npmRepoName   = "npm"
	pypiRepoName  = "pypi"
	gemRepoName   = "rubygems"
)

// matchers are the ecosystems Stevedore decides. A vulnerability no matcher
// applies to affects nothing.
var matchers = []matcher{
	{
		name:        "alpine",
		constraints: []constraint{distDID, distName, distPrettyName},
		filter:      distIs("alpine", "Alpine Linux"),
		vulnerable: func(r *Record, v *Vulnerability) (bool, error) {
			switch v.FixedInVersion {
			case "":
				return true, nil
			case "0":
				return false, nil
			}
			have, err := apk.NewVersion(r.Package.Version)
			if err != nil {
				return false, fmt.Errorf("installed apk version %q: %w", r.Package.Version, err)
			}
			fixed, err := apk.NewVersion(v.FixedInVersion)
			if err != nil {
				return false, fmt.Errorf("fixed apk version %q: %w", v.FixedInVersion, err)
			}
			return have.LessThan(fixed), nil
		},
	},
	{
		name:        "debian",
		constraints: []constraint{distDID, distName, distVersionID},
		filter:      distIs("debian", "Debian GNU/Linux"),
		vulnerable:  dpkgVulnerable(false),
	},
	{
		name:        "ubuntu",
		constraints: []constraint{distDID, distName, distVersionID},
		filter:      distIs("ubuntu", "Ubuntu"),
		vulnerable:  dpkgVulnerable(true),
	},
	{
		name:        "rhel",
		constraints: []constraint{packageModule, repoKey},
		filter:      func(r *Record) bool { return r.Repo != nil && r.Repo.Key == rhelRepoKey },
		vulnerable:  rhelVulnerable,
	},
	{
		name:        "python",
		constraints: []constraint{repoName},
		filter: func(r *Record) bool {
			return strings.HasPrefix(r.Package.NormalizedVersion, "pep440:")
		},
		vulnerable: osvVulnerable(pep440.Parse, pep440.Version.Compare),
	},
	{
		name:        "java",
		constraints: []constraint{repoName},
		filter:      repoNamed(mavenRepoName),
		vulnerable:  osvVulnerable(mvn.NewVersion, mvn.Version.Compare),
	},
	{
		name:        "ruby",
		constraints: []constraint{repoName},
		filter:      repoNamed(gemRepoName),
		vulnerable:  osvVulnerable(gem.NewVersion, gem.Version.Compare),
	},
	{
		name:        "gobin",
		constraints: []constraint{repoName},
		filter:      func(r *Record) bool { return r.Repo != nil && r.Repo.URI == goRepoURI },
		vulnerable:  semverVulnerable(goSemver),
	},
	{
		name:        "nodejs",
		constraints: []constraint{repoName},
		filter:      repoNamed(npmRepoName),
		vulnerable:  semverVulnerable(npmSemver),
	},
}

func distIs(did, name string) func(*Record) bool {
	return func(r *Record) bool { return r.Dist != nil && (r.Dist.DID == did || r.Dist.Name == name) }
}

func repoNamed(name string) func(*Record) bool {
	return func(r *Record) bool { return r.Repo != nil && r.Repo.Name == name }
}

// applies reports whether the record satisfies m's constraints for v, as
// claircore's affected-manifest query does: each constrained field of v must
// be non-empty and equal to the record's.
func (m *matcher) applies(r *Record, v *Vulnerability) bool {
	for _, c := range m.constraints {
		var want, have string
		switch c {
		case distDID, distName, distVersionID, distPrettyName:
			if v.Dist == nil || r.Dist == nil {
				return false
			}
			switch c {
			case distDID:
				want, have = v.Dist.DID, r.Dist.DID
			case distName:
				want, have = v.Dist.Name, r.Dist.Name
			case distVersionID:
				want, have = v.Dist.VersionID, r.Dist.VersionID
			default:
				want, have = v.Dist.PrettyName, r.Dist.PrettyName
			}
		case repoName, repoKey:
			if v.Repo == nil || r.Repo == nil {
				return false
			}
			if c == repoName {
				want, have = v.Repo.Name, r.Repo.Name
			} else {
				want, have = v.Repo.Key, r.Repo.Key
			}
		case packageModule:
			// An empty module is a value here: a vulnerability for
			// non-modular packages matches non-modular packages.
			if v.Package.Module != r.Package.Module {
				return false
			}
			continue
		}
		if want == "" || want != have {
			return false
		}
	}
	return true
}

func dpkgVulnerable(zeroIsUnfixed bool) func(*Record, *Vulnerability) (bool, error) {
	return func(r *Record, v *Vulnerability) (bool, error) {
		if v.FixedInVersion == "" {
			return true, nil
		}
		if v.FixedInVersion == "0" {
			// Debian's tracker: "0" means not affected; Ubuntu's
			// OVAL data: not yet fixed.
			return zeroIsUnfixed, nil
		}
		have, err := deb.NewVersion(r.Package.Version)
		if err != nil {
			return false, fmt.Errorf("installed dpkg version %q: %w", r.Package.Version, err)
		}
		fixed, err := deb.NewVersion(v.FixedInVersion)
		if err != nil {
			return false, fmt.Errorf("fixed dpkg version %q: %w", v.FixedInVersion, err)
		}
		return have.LessThan(fixed), nil
	}
}

// rhelVulnerable is claircore's RHEL decision: the vulnerability's
// repository names a CPE that covers the record's repository CPE, and the
// installed rpm version is below the fixed one (or at most the affected
// one), with the arch compared by the vulnerability's arch op.
func rhelVulnerable(r *Record, v *Vulnerability) (bool, error) {
	if v.Repo == nil || r.Repo == nil || v.Repo.Key != rhelRepoKey {
		return false, nil
	}
	vc, err := unbindCPE(v.Repo.Name)
	if err != nil {
		return false, fmt.Errorf("vulnerability repository CPE %q: %w", v.Repo.Name, err)
	}
	rc, err := unbindCPE(r.Repo.CPE)
	if err != nil {
		return false, fmt.Errorf("installed package's repository CPE %q: %w", r.Repo.CPE, err)
	}
	if !matching.IsSuperset(vc, rc) &&
		!strings.HasPrefix(naming.BindToFS(rc), strings.TrimRight(naming.BindToFS(vc), ":*")) {
		return false, nil
	}
	have := rpm.NewVersion(r.Package.Version)
	var bound rpm.Version
	lessOrEqual := true
	switch {
	case v.FixedInVersion != "":
		bound, lessOrEqual = rpm.NewVersion(v.FixedInVersion), false
	case v.Package.Version != "":
		bound = rpm.NewVersion(v.Package.Version)
	default:
		return archMatches(v, r.Package.Arch), nil
	}
	c := have.Compare(bound)
	return (c < 0 || (lessOrEqual && c == 0)) && archMatches(v, r.Package.Arch), nil
}

func unbindCPE(s string) (common.WellFormedName, error) {
	if strings.HasPrefix(s, "cpe:2.3:") {
		return naming.UnbindFS(s)
	}
	return naming.UnbindURI(s)
}

// archMatches is claircore's ArchOp.Cmp: a vulnerability without an arch
// matches every package; an installed package without one matches none.
func archMatches(v *Vulnerability, have string) bool {
	want := v.Package.Arch
	switch {
	case want == "":
		return true
	case have == "":
		return false
	}
	switch v.ArchOp {
	case ArchOpEquals:
		return have == want
	case ArchOpNotEquals:
		return have != want
	case ArchOpPatternMatch:
		re, err := v.archPattern()
		return err == nil && re.MatchString(have)
	}
	return false
}

// osvVulnerable decides the OSV-style language ecosystems (PyPI, Maven,
// RubyGems), whose fixed_in_version is a URL query of introduced, fixed
// and lastAffected versions, as claircore's matchers do.
func osvVulnerable[T any](parse func(string) (T, error), compare func(a, b T) int) func(*Record, *Vulnerability) (bool, error) {
	return func(r *Record, v *Vulnerability) (bool, error) {
		if v.FixedInVersion == "" {
			return true, nil
		}
		have, err := parse(r.Package.Version)
		if err != nil {
			return false, fmt.Errorf("installed version %q: %w", r.Package.Version, err)
		}
		q, err := url.ParseQuery(v.FixedInVersion)
		if err != nil {
			return false, fmt.Errorf("fixed_in_version %q: %w", v.FixedInVersion, err)
		}
		bound := func(key string) (T, error) {
			b, err := parse(q.Get(key))
			if err != nil {
				return b, fmt.Errorf("%s version %q: %w", key, q.Get(key), err)
			}
			return b, nil
		}
		if q.Get("introduced") != "" {
			in, err := bound("introduced")
			if err != nil {
				return false, err
			}
			if compare(have, in) < 0 {
				return false, nil
			}
		}
		switch {
		case q.Get("fixed") != "":
			f, err := bound("fixed")
			if err != nil {
				return false, err
			}
			return compare(have, f) < 0, nil
		case q.Get("lastAffected") != "":
			la, err := bound("lastAffected")
			if err != nil {
				return false, err
			}
			return compare(have, la) <= 0, nil
		}
		return true, nil
	}
}

// A semverParser reads an installed or fixed version of a semver
// ecosystem: its claircore normalized version (major, minor, patch) and a
// comparison with another version.
type semverParser func(string) (Version, func(string) (int, error), error)

// semverVulnerable decides the ecosystems that claircore matches on
// normalized versions (Go, npm): a vulnerability with a range affects the
// versions in it (the package's normalized version if it has one of the
// range's kind, else one computed from its version); without a range, a
// fixed_in_version is compared with the ecosystem's semver; with neither,
// every version is affected.
func semverVulnerable(parse semverParser) func(*Record, *Vulnerability) (bool, error) {
	return func(r *Record, v *Vulnerability) (bool, error) {
		norm, compare, err := parse(r.Package.Version)
		if err != nil {
			return false, fmt.Errorf("installed version %q: %w", r.Package.Version, err)
		}
		if v.Range != nil && v.Range.Lower.Kind != "" && v.Range.Lower.Kind == v.Range.Upper.Kind {
			var stored Version
			if r.Package.NormalizedVersion != "" {
				if err := stored.UnmarshalText([]byte(r.Package.NormalizedVersion)); err == nil && stored.Kind == v.Range.Lower.Kind {
					norm = stored
				}
			}
			return v.Range.Contains(norm), nil
		}
		if v.FixedInVersion == "" {
			return true, nil
		}
		c, err := compare(v.FixedInVersion)
		if err != nil {
			return false, fmt.Errorf("fixed version %q: %w", v.FixedInVersion, err)
		}
		return c < 0, nil
	}
}

var errNotSemver = errors.New("not a semantic version")

// goSemver reads a Go module version ("v1.2.3") or a Go toolchain version
// ("go1.26.8", "1.26.8", as claircore writes stdlib).
func goSemver(s string) (Version, func(string) (int, error), error) {
	canon := func(s string) (string, error) {
		s = strings.TrimPrefix(s, "go")
		if !strings.HasPrefix(s, "v") {
			s = "v" + s
		}
		if !semver.IsValid(s) {
			return "", fmt.Errorf("%q: %w", s, errNotSemver)
		}
		return s, nil
	}
	have, err := canon(s)
	if err != nil {
		return Version{}, nil, err
	}
	norm, err := normalizeSemver(strings.TrimPrefix(semver.Canonical(have), "v"))
	if err != nil {
		return Version{}, nil, fmt.Errorf("%q: %w", s, err)
	}
	return norm, func(o string) (int, error) {
		oc, err := canon(o)
		if err != nil {
			return 0, err
		}
		return semver.Compare(have, oc), nil
	}, nil
}

// npmSemver reads an npm version.
func npmSemver(s string) (Version, func(string) (int, error), error) {
	have, err := npm.NewVersion(s)
	if err != nil {
		return Version{}, nil, err
	}
	norm, err := normalizeSemver(have.String())
	if err != nil {
		return Version{}, nil, fmt.Errorf("%q: %w", s, err)
	}
	return norm, func(o string) (int, error) {
		ov, err := npm.NewVersion(o)
		if err != nil {
			return 0, err
		}
		return have.Compare(ov), nil
	}, nil
}

// normalizeSemver is claircore's FromSemver: major, minor and patch of
// "1.2.3[-pre][+build]" in places 1 to 3 of a "semver" Version.
func normalizeSemver(s string) (Version, error) {
	core, _, _ := strings.Cut(s, "+")
	core, _, _ = strings.Cut(core, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return Version{}, errNotSemver
	}
	norm := Version{Kind: "semver"}
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 0 {
			return Version{}, errNotSemver
		}
		norm.V[1+i] = int32(n)
	}
	return norm, nil
}
