// Package affected answers Clair's notifier: given vulnerabilities, which
// indexed manifests they affect (POST
// /indexer/api/v1/internal/affected_manifest/, claircore's
// AffectedManifests).
//
// It follows claircore's method. Candidate packages are those of usable
// reports (IndexFinished or IndexPartial; a deleted manifest has none) whose
// name, or source package name, is a vulnerability's package name. Each
// candidate is seen as claircore's index records (the package with the
// distribution and each repository of each of its environments), and each
// ecosystem's matcher decides as claircore's does: the vulnerability's
// distribution or repository fields it queries on must equal the record's,
// the record must pass the matcher's filter, and the versions are compared
// with the ecosystem's maintained version library (dpkg, rpm, apk, PEP 440,
// Maven, RubyGems, Go and npm semver; claircore's normalized-version ranges
// for Go and npm). A vulnerability no matcher applies to affects nothing.
//
// Language packages of reports made before Stevedore recorded claircore's
// language repositories carry none; their repository is then derived from
// the package URL's type (pkg:pypi, pkg:maven, pkg:gem, pkg:golang,
// pkg:npm), and a pkg:pypi package counts as PEP 440-versioned.
package affected

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
)

// Default bounds.
const (
	// DefaultMaxVulnerabilities bounds the vulnerabilities of one request.
	// Clair's notifier sends at most 1000 at a time.
	DefaultMaxVulnerabilities = 5000
	// DefaultMaxRows bounds the candidate packages one request reads.
	DefaultMaxRows = 2_000_000
)

// ErrTooMany is returned when a request is over a bound: too many
// vulnerabilities, or too many candidate packages.
var ErrTooMany = errors.New("request too large")

// ErrInvalid is returned for a vulnerability list that cannot be answered
// (a vulnerability without an id).
var ErrInvalid = errors.New("invalid vulnerability")

// Store is what a Finder needs of storage (*postgres.Store).
type Store interface {
	// AffectedCandidates calls fn with each stored package, held by
	// usable reports, whose name or source name is one of names (lower
	// case), once with all the manifests holding it, reading at most
	// maxPackages packages counted per manifest (more: an error wrapping
	// postgres.ErrTooManyRows).
	AffectedCandidates(ctx context.Context, names []string, maxPackages int, fn func(*postgres.AffectedCandidate) error) error
}

// Finder answers affected-manifest questions from the store.
type Finder struct {
	store Store
	log   *slog.Logger
	// MaxVulnerabilities bounds the vulnerabilities of one request.
	MaxVulnerabilities int
	// MaxRows bounds the candidate packages one request reads.
	MaxRows int
}

// New returns a Finder with the default bounds; log nil is slog.Default().
func New(st Store, log *slog.Logger) *Finder {
	if log == nil {
		log = slog.Default()
	}
	return &Finder{store: st, log: log, MaxVulnerabilities: DefaultMaxVulnerabilities, MaxRows: DefaultMaxRows}
}

// Affected returns, for the given vulnerabilities, the manifests each one
// affects. The answer lists every vulnerability given, affecting something
// or not; two with the same id are one.
func (f *Finder) Affected(ctx context.Context, vulns []Vulnerability) (*Answer, error) {
	if len(vulns) > f.MaxVulnerabilities {
		return nil, fmt.Errorf("%d vulnerabilities, at most %d per request: %w", len(vulns), f.MaxVulnerabilities, ErrTooMany)
	}
	ans := &Answer{Vulnerabilities: map[string]*Vulnerability{}, VulnerableManifests: map[string][]string{}}
	byName, err := f.byPackageName(ctx, vulns, ans)
	if err != nil {
		return nil, err
	}
	s := &search{f: f, byName: byName, hits: map[report.Digest]map[string]bool{}, unknown: map[string]bool{}}
	err = f.store.AffectedCandidates(ctx, slices.Sorted(maps.Keys(byName)), f.MaxRows, func(c *postgres.AffectedCandidate) error {
		return s.candidate(ctx, c)
	})
	if errors.Is(err, postgres.ErrTooManyRows) {
		return nil, fmt.Errorf("%w: %w", err, ErrTooMany)
	}
	if err != nil {
		return nil, err
	}
	for id := range s.unknown {
		f.log.DebugContext(ctx, "affected manifests: no matcher for the vulnerability's ecosystem; it affects nothing here", "id", id)
	}
	for m, ids := range s.hits {
		list := slices.Collect(maps.Keys(ids))
		// Most severe first (Clair's notifier reads the first as the
		// manifest's worst), then by id for a stable answer.
		slices.SortFunc(list, func(a, b string) int {
			return cmp.Or(cmp.Compare(ans.Vulnerabilities[b].NormalizedSeverity, ans.Vulnerabilities[a].NormalizedSeverity), strings.Compare(a, b))
		})
		ans.VulnerableManifests[string(m)] = list
	}
	return ans, nil
}

// byPackageName echoes every vulnerability into ans (two with the same id
// are one) and returns those that may affect something by the lowercase
// name of their package.
func (f *Finder) byPackageName(ctx context.Context, vulns []Vulnerability, ans *Answer) (map[string][]*Vulnerability, error) {
	byName := map[string][]*Vulnerability{}
	for i := range vulns {
		v := &vulns[i]
		if v.ID == "" {
			return nil, fmt.Errorf("vulnerabilities[%d] (%q): no id: %w", i, v.Name, ErrInvalid)
		}
		if _, dup := ans.Vulnerabilities[v.ID]; dup {
			continue
		}
		ans.Vulnerabilities[v.ID] = echo(v)
		if v.Invert {
			f.log.DebugContext(ctx, "affected manifests: vulnerability asserts packages are not vulnerable (Invert); it affects nothing", "id", v.ID, "name", v.Name)
			continue
		}
		if v.Package == nil || v.Package.Name == "" {
			f.log.DebugContext(ctx, "affected manifests: vulnerability names no package; it affects nothing", "id", v.ID, "name", v.Name)
			continue
		}
		key := strings.ToLower(v.Package.Name)
		byName[key] = append(byName[key], v)
	}
	return byName, nil
}

// search is one Affected call's matching of stored packages.
type search struct {
	f      *Finder
	byName map[string][]*Vulnerability
	// hits are manifest -> vulnerability ids, as a set.
	hits map[report.Digest]map[string]bool
	// unknown are the vulnerabilities no matcher knew the ecosystem of.
	unknown map[string]bool
}

// candidate matches a stored package that has the name of a
// vulnerability's package, or whose source package has it, once, and
// records the vulnerabilities it has for every manifest holding it.
func (s *search) candidate(ctx context.Context, c *postgres.AffectedCandidate) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(c.Skipped) > 0 {
		s.f.log.WarnContext(ctx, "affected manifests: parts of a stored package could not be read; left out", "manifests", len(c.Manifests), "first", first(c.Manifests), "skipped", c.Skipped)
	}
	if c.Package == nil {
		return nil
	}
	records := recordsOf(c)
	pypi := strings.HasPrefix(c.Package.PURL, "pkg:pypi/")
	seen := map[string]bool{}
	for _, n := range []string{c.Package.Name, sourceName(c.Package)} {
		if n == "" || seen[strings.ToLower(n)] {
			continue
		}
		seen[strings.ToLower(n)] = true
		for _, v := range s.byName[strings.ToLower(n)] {
			if !sameName(v.Package.Name, n, pypi) {
				continue
			}
			s.match(ctx, c.Manifests, records, v)
		}
	}
	return nil
}

func first(ds []report.Digest) report.Digest {
	if len(ds) == 0 {
		return ""
	}
	return ds[0]
}

// match records whether records, held by manifests ms, are vulnerable to
// v. It decides once, unless every manifest is known to be affected by v
// already.
func (s *search) match(ctx context.Context, ms []report.Digest, records []*Record, v *Vulnerability) {
	if !slices.ContainsFunc(ms, func(m report.Digest) bool { return !s.hits[m][v.ID] }) {
		return
	}
	ok, known := s.f.decide(ctx, records, v)
	if !known {
		s.unknown[v.ID] = true
	}
	if !ok {
		return
	}
	for _, m := range ms {
		if s.hits[m] == nil {
			s.hits[m] = map[string]bool{}
		}
		s.hits[m][v.ID] = true
	}
}

// decide reports whether any record is vulnerable to v by any matcher that
// applies, and whether some matcher knew the record's ecosystem at all.
func (f *Finder) decide(ctx context.Context, records []*Record, v *Vulnerability) (vulnerable, known bool) {
	for _, r := range records {
		for i := range matchers {
			m := &matchers[i]
			if !m.applies(r, v) || !m.filter(r) {
				continue
			}
			known = true
			ok, err := m.vulnerable(r, v)
			if err != nil {
				// claircore fails the whole request on some of these;
				// one bad version must not hide every other answer.
				f.log.DebugContext(ctx, "affected manifests: versions not comparable; not affected", "matcher", m.name, "id", v.ID, "package", r.Package.Name, "error", err)
				continue
			}
			if ok {
				return true, true
			}
		}
	}
	return false, known
}

func sourceName(p *report.Package) string {
	if p.Source == nil {
		return ""
	}
	return p.Source.Name
}

// purlRepos are claircore's language repositories by package-URL type.
var purlRepos = map[string]*Repository{
	"pypi":   {Name: pypiRepoName, URI: "https://pypi.org/simple"},
	"maven":  {Name: mavenRepoName, URI: "https://repo1.maven.apache.org/maven2"},
	"gem":    {Name: gemRepoName, URI: "https://rubygems.org/gems/"},
	"golang": {Name: "go", URI: goRepoURI},
	"npm":    {Name: npmRepoName, URI: "https://www.npmjs.com/"},
}

// recordsOf expands a candidate into claircore's index records: one per
// (environment, repository), or per environment when it has no repository.
func recordsOf(c *postgres.AffectedCandidate) []*Record {
	ip := c.Package
	p := &Package{
		Name:              ip.Name,
		Version:           ip.Version,
		Kind:              ip.Kind,
		NormalizedVersion: ip.NormalizedVersion,
		Module:            ip.Module,
		Arch:              ip.Arch,
		CPE:               ip.CPE,
	}
	purlType, _, _ := strings.Cut(strings.TrimPrefix(ip.PURL, "pkg:"), "/")
	fallback := purlRepos[purlType]
	if ip.PURL == "" {
		fallback = nil
	}
	if fallback != nil && purlType == "pypi" && p.NormalizedVersion == "" {
		// The python matcher selects on the version kind alone.
		p.NormalizedVersion = "pep440:"
	}
	envs := c.Environments
	if len(envs) == 0 {
		envs = []*postgres.AffectedEnvironment{{}}
	}
	var out []*Record
	for _, e := range envs {
		if e == nil {
			continue
		}
		d := distOf(e.Distribution)
		var repos []*Repository
		hasLang := false
		for _, r := range e.Repositories {
			if r == nil {
				continue
			}
			rr := &Repository{ID: r.ID, Name: r.Name, Key: r.Key, URI: r.URI, CPE: r.CPE}
			if fallback != nil && rr.Name == fallback.Name {
				hasLang = true
			}
			repos = append(repos, rr)
		}
		if fallback != nil && !hasLang {
			repos = append(repos, fallback)
		}
		if len(repos) == 0 {
			out = append(out, &Record{Package: p, Dist: d})
		}
		for _, r := range repos {
			out = append(out, &Record{Package: p, Dist: d, Repo: r})
		}
	}
	return out
}

func distOf(d *report.Distribution) *Distribution {
	if d == nil {
		return nil
	}
	return &Distribution{ID: d.ID, DID: d.DID, Name: d.Name, Version: d.Version, VersionCodeName: d.VersionCodeName,
		VersionID: d.VersionID, Arch: d.Arch, CPE: d.CPE, PrettyName: d.PrettyName}
}

// echo returns v as the answer lists it: in the shape of Clair's
// vulnerability schema, which Clair's own answers do not always meet.
// Package kinds are spelled as the schema spells them (BINARY, SOURCE;
// claircore writes them in lower case) and dropped when unknown; a
// vulnerability with a package always has an arch_op: a missing one is
// written "equals", which matches what claircore's missing op matches for
// a package without an arch.
func echo(v *Vulnerability) *Vulnerability {
	e := *v
	e.Invert = false
	e.Package = echoPackage(v.Package, 0)
	if e.Package != nil && e.ArchOp == ArchOpInvalid {
		e.ArchOp = ArchOpEquals
	}
	if e.Range != nil && e.Range.Lower.Kind == "" && e.Range.Upper.Kind == "" {
		e.Range = nil
	}
	return &e
}

func echoPackage(p *Package, depth int) *Package {
	if p == nil || depth > 1 {
		return nil
	}
	e := *p
	switch strings.ToLower(p.Kind) {
	case "binary":
		e.Kind = "BINARY"
	case "source":
		e.Kind = "SOURCE"
	default:
		e.Kind = ""
	}
	e.Source = echoPackage(p.Source, depth+1)
	return &e
}

var pep503 = regexp.MustCompile(`[-_.]+`)

// sameName compares a vulnerability's package name with an installed
// package's: exactly, or for a Python package as PEP 503 normalizes names
// (case-insensitive, runs of "-", "_" and "." equal).
func sameName(vuln, installed string, python bool) bool {
	if vuln == installed {
		return true
	}
	return python && pep503.ReplaceAllString(strings.ToLower(vuln), "-") == pep503.ReplaceAllString(strings.ToLower(installed), "-")
}
