package sbom

import (
	"fmt"
	"io"
	"strconv"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"

	"github.com/stevedore-dev/stevedore/report"
)

// serialNamespace is the UUID namespace of CycloneDX serial numbers: the
// serial number of an image's BOM is the name-based (SHA-1) UUID of its
// manifest digest in it.
var serialNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/stevedore-dev/stevedore/sbom/cyclonedx"))

// Property names Stevedore sets (the "stevedore:" namespace).
const (
	propState        = "stevedore:report:state"
	propPartial      = "stevedore:report:partial"
	propPartialOf    = "stevedore:report:partial:"
	propScannerState = "stevedore:report:scanner_state"
	propKind         = "stevedore:package:kind"
	propSource       = "stevedore:package:source"
	propArch         = "stevedore:package:arch"
	propLocation     = "stevedore:location:"
)

// imageRef is the image's bom-ref.
const imageRef = "image"

func cdxRef(prefix, ref string) string { return prefix + "-" + ref }

// CycloneDX returns rep as a CycloneDX 1.6 BOM (see the package comment).
func CycloneDX(rep *report.Report, opts Options) (*cdx.BOM, error) {
	m, err := newModel(rep, opts)
	if err != nil {
		return nil, err
	}
	return m.cyclonedx(), nil
}

func writeCycloneDX(w io.Writer, m *model) error {
	bom := m.cyclonedx()
	if err := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false).EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("sbom: write CycloneDX for %s: %w", m.rep.Hash, err)
	}
	return nil
}

func (m *model) cyclonedx() *cdx.BOM {
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.SerialNumber = "urn:uuid:" + uuid.NewSHA1(serialNamespace, []byte(m.rep.Hash)).String()
	bom.Version = 1
	bom.Metadata = m.cdxMetadata()

	var comps []cdx.Component
	var contains []string
	for _, d := range m.distros {
		c := cdxDistro(d)
		comps = append(comps, c)
		contains = append(contains, c.BOMRef)
	}
	for _, e := range m.packages {
		c := m.cdxPackage(e)
		comps = append(comps, c)
		if !e.source {
			contains = append(contains, c.BOMRef)
		}
	}
	bom.Components = &comps
	deps := []cdx.Dependency{{Ref: imageRef, Dependencies: &contains}}
	bom.Dependencies = &deps
	if m.partial {
		bom.Compositions = &[]cdx.Composition{{
			Aggregate:  cdx.CompositionAggregateIncomplete,
			Assemblies: &[]cdx.BOMReference{imageRef},
		}}
	}
	return bom
}

// cdxMetadata is the BOM's metadata: the tool, and the image as the
// component described, with the report's state in properties.
func (m *model) cdxMetadata() *cdx.Metadata {
	alg, hexValue := digestHash(m.rep.Hash)
	hashAlg := cdx.HashAlgoSHA256
	if alg == "sha512" {
		hashAlg = cdx.HashAlgoSHA512
	}
	image := &cdx.Component{
		BOMRef:  imageRef,
		Type:    cdx.ComponentTypeContainer,
		Name:    m.name,
		Version: string(m.rep.Hash),
		Hashes:  &[]cdx.Hash{{Algorithm: hashAlg, Value: hexValue}},
	}
	props := []cdx.Property{{Name: propState, Value: string(m.rep.State)}}
	if m.rep.ScannerState != "" {
		props = append(props, cdx.Property{Name: propScannerState, Value: m.rep.ScannerState})
	}
	if m.partial {
		props = append(props, cdx.Property{Name: propPartial, Value: "true"})
		for _, r := range m.partialOf {
			props = append(props, cdx.Property{Name: propPartialOf + r.Scanner, Value: r.Reason})
		}
	}
	return &cdx.Metadata{
		Timestamp: m.created,
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: toolName, Version: m.tool,
		}}},
		Component:  image,
		Properties: &props,
	}
}

// cdxDistro is the operating-system component of a distribution.
func cdxDistro(d *distro) cdx.Component {
	c := cdx.Component{
		BOMRef:      cdxRef("os", d.ref),
		Type:        cdx.ComponentTypeOS,
		Name:        d.d.DID,
		Version:     d.d.VersionID,
		Description: d.d.PrettyName,
		CPE:         d.d.CPE,
	}
	if c.Name == "" {
		c.Name = d.d.Name
	}
	if c.Version == "" {
		c.Version = d.d.Version
	}
	var dp []cdx.Property
	for _, kv := range [][2]string{{"name", d.d.Name}, {"version", d.d.Version}, {"version_code_name", d.d.VersionCodeName}, {"arch", d.d.Arch}} {
		if kv[1] != "" {
			dp = append(dp, cdx.Property{Name: "stevedore:distribution:" + kv[0], Value: kv[1]})
		}
	}
	if len(dp) > 0 {
		c.Properties = &dp
	}
	return c
}

// cdxPackage is the library component of a binary or source package, with
// its source as a pedigree and where it was found as evidence.
func (m *model) cdxPackage(e *pkg) cdx.Component {
	c := cdx.Component{
		BOMRef:     cdxRef("pkg", e.ref),
		Type:       cdx.ComponentTypeLibrary,
		Name:       e.p.Name,
		Version:    e.p.Version,
		PackageURL: e.p.PURL,
		CPE:        e.p.CPE,
	}
	kind := e.p.Kind
	if kind == "" {
		kind = report.KindBinary
	}
	if e.source {
		kind = report.KindSource
	}
	pp := []cdx.Property{{Name: propKind, Value: kind}}
	if e.p.Arch != "" {
		pp = append(pp, cdx.Property{Name: propArch, Value: e.p.Arch})
	}
	if e.src != "" {
		src := m.byRef[e.src]
		pp = append(pp, cdx.Property{Name: propSource, Value: cdxRef("pkg", e.src)})
		// The package is built from its source package: the
		// ancestor is a copy (bom-refs are unique in a BOM; the
		// source's own component is the property's ref).
		c.Pedigree = &cdx.Pedigree{Ancestors: &[]cdx.Component{{
			Type: cdx.ComponentTypeLibrary, Name: src.p.Name, Version: src.p.Version, PackageURL: src.p.PURL,
		}}}
	}
	if len(e.envs) > 0 {
		occ := make([]cdx.EvidenceOccurrence, 0, len(e.envs))
		for i, env := range e.envs {
			occ = append(occ, cdx.EvidenceOccurrence{
				Location:          env.PackageDB,
				AdditionalContext: "introduced in layer " + string(env.IntroducedIn),
			})
			n := propLocation + strconv.Itoa(i) + ":"
			pp = append(pp,
				cdx.Property{Name: n + "path", Value: env.PackageDB},
				cdx.Property{Name: n + "layer", Value: string(env.IntroducedIn)})
		}
		c.Evidence = &cdx.Evidence{Occurrences: &occ}
	}
	c.Properties = &pp
	return c
}
