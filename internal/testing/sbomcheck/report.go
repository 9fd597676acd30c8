package sbomcheck

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/spdx/tools-golang/spdx"

	"github.com/stevedore-dev/stevedore/report"
)

// pkgID is a package as both formats and the report name it.
type pkgID struct {
	Name, Version, PURL string
	Source              bool
}

// location is where a package was found.
type location struct{ Path, Layer string }

// sourceOf is the report's source package of p (by id when the report has
// it, else the embedded copy), nil when none is named.
func sourceOf(rep *report.Report, p *report.Package) *report.Package {
	s := p.Source
	if s == nil || p.Kind == report.KindSource {
		return nil
	}
	if full := rep.Packages[s.ID]; s.ID != "" && full != nil && full.Name == s.Name {
		s = full
	}
	if s.Name == "" {
		return nil
	}
	return s
}

// wantPackages is the report's package set: its packages and their
// source packages (with a name), counted by distinct content (the same
// name and version for two architectures are two packages); per package
// its locations; per package its source.
func wantPackages(rep *report.Report) (all map[pkgID]int, locs map[pkgID][]location, sources map[pkgID]pkgID) {
	all, locs, sources = map[pkgID]int{}, map[pkgID][]location{}, map[pkgID]pkgID{}
	seen := map[string]bool{}
	note := func(p *report.Package) pkgID {
		k := pkgID{p.Name, p.Version, p.PURL, p.Kind == report.KindSource}
		var src [2]string
		if p.Source != nil {
			src = [2]string{p.Source.Name, p.Source.Version}
		}
		content, _ := json.Marshal([]any{p.Name, p.Version, p.Kind, p.Arch, p.Module, p.CPE, p.PURL, src})
		if !seen[string(content)] {
			seen[string(content)] = true
			all[k]++
		}
		return k
	}
	for id, p := range rep.Packages {
		k := note(p)
		for _, e := range rep.Environments[id] {
			l := location{e.PackageDB, string(e.IntroducedIn)}
			if !slices.Contains(locs[k], l) {
				locs[k] = append(locs[k], l)
			}
		}
		if s := sourceOf(rep, p); s != nil {
			c := *s
			c.Kind = report.KindSource
			sources[k] = note(&c)
		}
	}
	for _, l := range locs {
		sortLocs(l)
	}
	return all, locs, sources
}

func sortLocs(l []location) {
	slices.SortFunc(l, func(a, b location) int { return strings.Compare(a.Path+"\x00"+a.Layer, b.Path+"\x00"+b.Layer) })
}

func pkgIDs(m map[pkgID]int) []string {
	var s []string
	for k, n := range m {
		s = append(s, fmt.Sprintf("%s@%s %s source=%v x%d", k.Name, k.Version, k.PURL, k.Source, n))
	}
	slices.Sort(s)
	return s
}

// CheckCycloneDX checks a decoded BOM against its report: the same package
// set with purls, versions, sources and locations; one operating-system
// component per distribution; the image contains every binary package;
// the partial marks exactly when the report is partial.
func CheckCycloneDX(t testing.TB, rep *report.Report, bom *cdx.BOM) {
	t.Helper()
	all, locs, sources := wantPackages(rep)
	seen := &cdxSeen{got: map[pkgID]int{}, locs: map[pkgID][]location{}, sources: map[pkgID]pkgID{}, byRef: map[string]pkgID{}}
	for _, c := range *bom.Components {
		seen.component(t, c)
	}
	for k, s := range seen.sources {
		seen.sources[k] = seen.byRef[s.Name]
	}
	if !maps.Equal(seen.got, all) {
		t.Errorf("packages:\n got %v\nwant %v", pkgIDs(seen.got), pkgIDs(all))
	}
	for _, l := range seen.locs {
		sortLocs(l)
	}
	for k, l := range locs {
		if !slices.Equal(seen.locs[k], l) {
			t.Errorf("%v: locations %v, want %v", k, seen.locs[k], l)
		}
	}
	if !maps.Equal(seen.sources, sources) {
		t.Errorf("sources:\n got %v\nwant %v", seen.sources, sources)
	}
	if seen.oses != len(rep.Distributions) {
		t.Errorf("%d operating-system components, want %d", seen.oses, len(rep.Distributions))
	}
	var contains []string
	for _, d := range *bom.Dependencies {
		if d.Ref == bom.Metadata.Component.BOMRef {
			contains = *d.Dependencies
		}
	}
	for _, b := range seen.binaries {
		if !slices.Contains(contains, b) {
			t.Errorf("the image does not list %s (%v)", b, seen.byRef[b])
		}
	}
	checkCycloneDXMetadata(t, rep, bom)
}

// cdxSeen is what CheckCycloneDX read of a BOM's components.
type cdxSeen struct {
	got     map[pkgID]int
	locs    map[pkgID][]location
	sources map[pkgID]pkgID // the source's bom-ref as its Name until resolved
	byRef   map[string]pkgID
	oses    int
	// binaries are the bom-refs of the binary packages.
	binaries []string
}

// component reads one component: an operating system is counted; a package
// is recorded with its locations and its source.
func (s *cdxSeen) component(t testing.TB, c cdx.Component) {
	t.Helper()
	if c.Type == cdx.ComponentTypeOS {
		s.oses++
		return
	}
	props := map[string]string{}
	for _, p := range *c.Properties {
		props[p.Name] = p.Value
	}
	k := pkgID{c.Name, c.Version, c.PackageURL, props["stevedore:package:kind"] == "source"}
	s.got[k]++
	s.byRef[c.BOMRef] = k
	if !k.Source {
		s.binaries = append(s.binaries, c.BOMRef)
	}
	for i := 0; ; i++ {
		p, ok := props["stevedore:location:"+strconv.Itoa(i)+":path"]
		if !ok {
			break
		}
		l := location{p, props["stevedore:location:"+strconv.Itoa(i)+":layer"]}
		if !slices.Contains(s.locs[k], l) {
			s.locs[k] = append(s.locs[k], l)
		}
	}
	if c.Evidence != nil && len(*c.Evidence.Occurrences) != len(s.locs[k]) && s.got[k] == 1 {
		t.Errorf("%v: %d occurrences, %d location properties", k, len(*c.Evidence.Occurrences), len(s.locs[k]))
	}
	if src := props["stevedore:package:source"]; src != "" {
		s.sources[k] = pkgID{Name: src} // resolved by the caller
		if c.Pedigree == nil || len(*c.Pedigree.Ancestors) != 1 {
			t.Errorf("%v: a source but no pedigree ancestor", k)
		}
	}
}

// checkCycloneDXMetadata checks the image component and that the BOM is
// marked partial exactly when the report is.
func checkCycloneDXMetadata(t testing.TB, rep *report.Report, bom *cdx.BOM) {
	t.Helper()
	if bom.Metadata.Component.Type != cdx.ComponentTypeContainer || bom.Metadata.Component.Version != string(rep.Hash) {
		t.Errorf("metadata component %+v", bom.Metadata.Component)
	}
	partial := false
	for _, p := range *bom.Metadata.Properties {
		if p.Name == "stevedore:report:partial" && p.Value == "true" {
			partial = true
		}
	}
	if want := rep.State == report.StateIndexPartial; partial != want || (bom.Compositions != nil) != want {
		t.Errorf("partial property %v, compositions %v; report state %s", partial, bom.Compositions != nil, rep.State)
	}
}

// CheckSPDX is CheckCycloneDX for an SPDX document.
func CheckSPDX(t testing.TB, rep *report.Report, doc *spdx.Document) {
	t.Helper()
	all, locs, sources := wantPackages(rep)
	got := map[pkgID]int{}
	byID := map[string]pkgID{}
	oses, images := 0, 0
	for _, p := range doc.Packages {
		switch p.PrimaryPackagePurpose {
		case "OPERATING_SYSTEM":
			oses++
			continue
		case "CONTAINER":
			images++
			if p.PackageVersion != string(rep.Hash) {
				t.Errorf("image version %s", p.PackageVersion)
			}
			continue
		}
		purl := ""
		for _, r := range p.PackageExternalReferences {
			if r.RefType == "purl" {
				purl = r.Locator
			}
		}
		k := pkgID{p.PackageName, p.PackageVersion, purl, p.PrimaryPackagePurpose == "SOURCE"}
		got[k]++
		byID[string(p.PackageSPDXIdentifier)] = k
		if all[k] == 1 {
			for _, l := range locs[k] {
				if !strings.Contains(p.PackageSourceInfo, l.Path+" in layer "+l.Layer) {
					t.Errorf("%v: sourceInfo %q does not name %v", k, p.PackageSourceInfo, l)
				}
			}
		}
	}
	if !maps.Equal(got, all) {
		t.Errorf("packages:\n got %v\nwant %v", pkgIDs(got), pkgIDs(all))
	}
	if images != 1 || oses != len(rep.Distributions) {
		t.Errorf("%d images, %d operating systems (want 1, %d)", images, oses, len(rep.Distributions))
	}
	checkSPDXRelationships(t, rep, doc, byID, sources)
	checkSPDXPartial(t, rep, doc)
}

// checkSPDXRelationships checks that the document describes the image,
// that the image contains every binary package found somewhere, and that
// the GENERATED_FROM relationships are the sources wanted.
func checkSPDXRelationships(t testing.TB, rep *report.Report, doc *spdx.Document, byID map[string]pkgID, sources map[pkgID]pkgID) {
	t.Helper()
	gotSources := map[pkgID]pkgID{}
	contained := map[pkgID]bool{}
	describes := 0
	for _, r := range doc.Relationships {
		a, b := string(r.RefA.ElementRefID), string(r.RefB.ElementRefID)
		switch r.Relationship {
		case "GENERATED_FROM":
			gotSources[byID[a]] = byID[b]
		case "CONTAINS":
			if a == "Image" {
				if k, ok := byID[b]; ok {
					contained[k] = true
				}
			}
		case "DESCRIBES":
			if a == "DOCUMENT" && b == "Image" {
				describes++
			}
		}
	}
	if describes != 1 {
		t.Errorf("%d DESCRIBES relationships from the document to the image", describes)
	}
	if !maps.Equal(gotSources, sources) {
		t.Errorf("GENERATED_FROM:\n got %v\nwant %v", gotSources, sources)
	}
	for id, p := range rep.Packages {
		k := pkgID{p.Name, p.Version, p.PURL, false}
		if p.Kind != report.KindSource && len(rep.Environments[id]) > 0 && !contained[k] {
			t.Errorf("the image does not CONTAIN %v", k)
		}
	}
}

// checkSPDXPartial checks that the document's comment and annotation say
// partial, naming the scanners, exactly when the report is partial.
func checkSPDXPartial(t testing.TB, rep *report.Report, doc *spdx.Document) {
	t.Helper()
	partial := rep.State == report.StateIndexPartial
	if got := strings.Contains(doc.DocumentComment, "partial index report"); got != partial {
		t.Errorf("document comment %q; report state %s", doc.DocumentComment, rep.State)
	}
	if got := len(doc.Annotations) == 1 && strings.Contains(doc.Annotations[0].AnnotationComment, "partial"); got != partial {
		t.Errorf("annotations %v; report state %s", doc.Annotations, rep.State)
	}
	if partial {
		for _, r := range rep.Partial {
			if !strings.Contains(doc.DocumentComment, r.Scanner) {
				t.Errorf("the comment does not name %s", r.Scanner)
			}
		}
	}
}
