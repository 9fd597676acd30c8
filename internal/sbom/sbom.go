// Package sbom exports a stored index report as a software bill of
// materials: SPDX 2.3 JSON (built with github.com/spdx/tools-golang) or
// CycloneDX 1.6 JSON (built with github.com/CycloneDX/cyclonedx-go).
//
// Both documents hold the image (the manifest digest), its operating system
// (the report's distributions), every package with its purl, version, the
// layer it was introduced in and the file it was read from (the report's
// environments: introduced_in and package_db), and every source package;
// and the relationships "image contains package" and "package generated from
// source package".
//
// The output is a function of the report alone: element ids and bom-refs
// are derived from the content of what they name (so the same package has
// the same id in two reports), elements are sorted, the timestamps are the
// report's updated_at, the SPDX document namespace and the CycloneDX serial
// number are derived from the manifest digest. Two exports of the same
// report are byte-identical, and exports of two reports diff cleanly.
//
// A partial report (state IndexPartial) says so: in CycloneDX a metadata
// property "stevedore:report:partial" = "true", one property per missing
// scanner, and an "incomplete" composition; in SPDX the document comment
// and a document annotation.
package sbom

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/stevedore-dev/stevedore/report"
)

// The formats Encode writes.
const (
	FormatSPDXJSON      = "spdx-json"
	FormatCycloneDXJSON = "cyclonedx-json"
)

// Formats lists the formats Encode writes.
var Formats = []string{FormatCycloneDXJSON, FormatSPDXJSON}

// Media types of the formats.
const (
	MediaTypeSPDXJSON      = "application/spdx+json"
	MediaTypeCycloneDXJSON = "application/vnd.cyclonedx+json; version=1.6"
)

// ErrFormat is returned for a format Encode does not write.
var ErrFormat = errors.New("unknown SBOM format")

// MediaType returns the media type of a format.
func MediaType(format string) (string, error) {
	switch format {
	case FormatSPDXJSON:
		return MediaTypeSPDXJSON, nil
	case FormatCycloneDXJSON:
		return MediaTypeCycloneDXJSON, nil
	}
	return "", fmt.Errorf("%w %q: want one of %s", ErrFormat, format, strings.Join(Formats, ", "))
}

// Options are what an SBOM holds beyond the report.
type Options struct {
	// Name names the image (a reference such as "registry/repo:tag");
	// empty means the manifest digest.
	Name string
	// ToolVersion is Stevedore's version, recorded as the creating tool's
	// (empty: "unknown").
	ToolVersion string
}

// toolName is the creating tool's name in both formats.
const toolName = "stevedore"

// Encode writes rep as an SBOM in format (FormatSPDXJSON or
// FormatCycloneDXJSON) to w. The report must have a valid manifest digest;
// a report that is not terminal or failed (IndexError) is refused, since it
// does not list the image's packages.
func Encode(ctx context.Context, w io.Writer, rep *report.Report, format string, opts Options) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := MediaType(format); err != nil {
		return err
	}
	m, err := newModel(rep, opts)
	if err != nil {
		return err
	}
	switch format {
	case FormatSPDXJSON:
		return writeSPDX(w, m)
	default:
		return writeCycloneDX(w, m)
	}
}

// model is the report as both formats see it: sorted, with content ids.
type model struct {
	rep       *report.Report
	name      string
	tool      string
	created   string // RFC 3339, UTC, seconds
	distros   []*distro
	packages  []*pkg // binary and source packages, sorted
	byRef     map[string]*pkg
	partial   bool
	partialOf []report.PartialReason // sorted
}

type distro struct {
	ref string
	d   *report.Distribution
}

type pkg struct {
	ref    string // content id, hex
	p      *report.Package
	source bool
	// src is the ref of the package's source package ("" when none).
	src  string
	envs []*report.Environment // sorted
}

// contentRef is a stable id of v's content: 16 hex digits of the SHA-256
// of its JSON.
func contentRef(kind string, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sbom: " + err.Error()) // structs of strings cannot fail
	}
	h := sha256.Sum256(append([]byte(kind+"\x00"), b...))
	return hex.EncodeToString(h[:8])
}

// pkgKey is the content of a package that identifies it, without the
// report-local ids and what is derived from the rest (the normalized
// version).
type pkgKey struct {
	Name, Version, Kind, Arch, Module, CPE, PURL string
	SourceName, SourceVersion                    string
}

func keyOf(p *report.Package) pkgKey {
	k := pkgKey{Name: p.Name, Version: p.Version, Kind: p.Kind, Arch: p.Arch, Module: p.Module, CPE: p.CPE, PURL: p.PURL}
	if p.Source != nil {
		k.SourceName, k.SourceVersion = p.Source.Name, p.Source.Version
	}
	return k
}

func newModel(rep *report.Report, opts Options) (*model, error) {
	if rep == nil {
		return nil, errors.New("sbom: no report")
	}
	if _, err := report.ParseDigest(string(rep.Hash)); err != nil {
		return nil, fmt.Errorf("sbom: report manifest_hash: %w", err)
	}
	if !rep.State.Terminal() {
		return nil, fmt.Errorf("sbom: the report of %s is in state %s, not finished yet", rep.Hash, rep.State)
	}
	if rep.State == report.StateIndexError {
		return nil, fmt.Errorf("sbom: the report of %s is an index error (%s): it lists no packages", rep.Hash, rep.Err)
	}
	m := &model{rep: rep, name: opts.Name, tool: opts.ToolVersion, byRef: map[string]*pkg{}}
	if m.name == "" {
		m.name = string(rep.Hash)
	}
	if m.tool == "" {
		m.tool = "unknown"
	}
	m.created = rep.UpdatedAt.UTC().Truncate(time.Second).Format(time.RFC3339)
	if rep.State == report.StateIndexPartial {
		m.partial = true
		m.partialOf = slices.Clone(rep.Partial)
		slices.SortFunc(m.partialOf, func(a, b report.PartialReason) int {
			return cmp.Or(cmp.Compare(a.Scanner, b.Scanner), cmp.Compare(a.Reason, b.Reason))
		})
	}
	m.addDistributions()
	m.addPackages()
	return m, nil
}

// addDistributions adds the report's distributions, sorted, each once.
func (m *model) addDistributions() {
	for _, d := range m.rep.Distributions {
		if d == nil {
			continue
		}
		c := *d
		c.ID = ""
		m.distros = append(m.distros, &distro{ref: contentRef("distribution", c), d: d})
	}
	slices.SortFunc(m.distros, func(a, b *distro) int {
		return cmp.Or(cmp.Compare(a.d.DID, b.d.DID), cmp.Compare(a.d.VersionID, b.d.VersionID), cmp.Compare(a.ref, b.ref))
	})
	m.distros = slices.CompactFunc(m.distros, func(a, b *distro) bool { return a.ref == b.ref })
}

// addPackages adds the report's packages and their source packages, each
// once, with where each was found, sorted.
func (m *model) addPackages() {
	rep := m.rep
	// Report ids in order, so that which copy of a duplicate is kept does
	// not depend on map order.
	ids := make([]string, 0, len(rep.Packages))
	for id := range rep.Packages {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := rep.Packages[id]
		if p == nil {
			continue
		}
		e := m.add(p, p.Kind == report.KindSource)
		if s := sourceOf(rep, p); s != nil && !e.source {
			e.src = m.add(s, true).ref
		}
		for _, env := range rep.Environments[id] {
			if env != nil && !slices.ContainsFunc(e.envs, func(x *report.Environment) bool {
				return x.PackageDB == env.PackageDB && x.IntroducedIn == env.IntroducedIn
			}) {
				e.envs = append(e.envs, env)
			}
		}
	}
	for _, e := range m.packages {
		slices.SortFunc(e.envs, func(a, b *report.Environment) int {
			return cmp.Or(cmp.Compare(a.PackageDB, b.PackageDB), cmp.Compare(a.IntroducedIn, b.IntroducedIn))
		})
	}
	slices.SortFunc(m.packages, func(a, b *pkg) int {
		return cmp.Or(cmp.Compare(a.p.Name, b.p.Name), cmp.Compare(a.p.Version, b.p.Version),
			cmp.Compare(a.p.Kind, b.p.Kind), cmp.Compare(a.ref, b.ref))
	})
}

// add returns the model's entry for p, adding it when no package with the
// same content is there yet.
func (m *model) add(p *report.Package, source bool) *pkg {
	ref := contentRef("package", keyOf(p))
	if e, ok := m.byRef[ref]; ok {
		return e
	}
	e := &pkg{ref: ref, p: p, source: source}
	m.byRef[ref] = e
	m.packages = append(m.packages, e)
	return e
}

// sourceOf returns p's source package: the report's own entry when the
// embedded copy's id names one (claircore's reports embed a copy that may
// lack fields), else the copy; nil when it has no name.
func sourceOf(rep *report.Report, p *report.Package) *report.Package {
	s := p.Source
	if s == nil {
		return nil
	}
	if full, ok := rep.Packages[s.ID]; ok && s.ID != "" && full != nil && full != p && full.Name == s.Name {
		s = full
	}
	if s.Name == "" {
		return nil
	}
	return s
}

// partialText says what a partial report misses, in one sentence.
func (m *model) partialText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "This SBOM is made from a partial index report (state %s): its package list may be incomplete.", m.rep.State)
	for _, r := range m.partialOf {
		fmt.Fprintf(&b, " Missing from %s: %s.", r.Scanner, strings.TrimSuffix(r.Reason, "."))
	}
	return b.String()
}

// digestHash splits the manifest digest for the formats' checksum fields.
func digestHash(d report.Digest) (alg, hexValue string) {
	return d.Algorithm(), d.Hex()
}
