package sbom

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/stevedore-dev/stevedore/report"
)

// NamespacePrefix starts every SPDX document namespace; the manifest
// digest's algorithm and hex follow ("<prefix>sha256/<hex>").
const NamespacePrefix = "https://github.com/stevedore-dev/stevedore/sbom/spdx/"

// SPDX element ids (without the "SPDXRef-" the encoder adds).
const (
	spdxDocument = "DOCUMENT"
	spdxImage    = "Image"
)

const noAssertion = "NOASSERTION"

// SPDX primary package purposes and relationship types used here.
const (
	purposeContainer = "CONTAINER"
	purposeOS        = "OPERATING_SYSTEM"
	purposeLibrary   = "LIBRARY"
	purposeSource    = "SOURCE"
)

// SPDX returns rep as an SPDX 2.3 document (see the package comment). The
// document passes tools-golang's spdxlib.ValidateDocument.
func SPDX(rep *report.Report, opts Options) (*spdx.Document, error) {
	m, err := newModel(rep, opts)
	if err != nil {
		return nil, err
	}
	return m.spdx()
}

func writeSPDX(w io.Writer, m *model) error {
	doc, err := m.spdx()
	if err != nil {
		return err
	}
	if err := spdxjson.Write(doc, w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return fmt.Errorf("sbom: write SPDX for %s: %w", m.rep.Hash, err)
	}
	return nil
}

func spdxID(prefix, ref string) common.ElementID { return common.ElementID(prefix + "-" + ref) }

func docID(id common.ElementID) common.DocElementID { return common.MakeDocElementID("", string(id)) }

func (m *model) spdx() (*spdx.Document, error) {
	tool := common.Creator{Creator: toolName + "-" + m.tool, CreatorType: "Tool"}
	doc := m.spdxDocument(tool)
	rel := func(a, b common.ElementID, typ string) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{RefA: docID(a), RefB: docID(b), Relationship: typ})
	}
	rel(spdxDocument, spdxImage, "DESCRIBES")
	for _, d := range m.distros {
		p := spdxDistro(d)
		doc.Packages = append(doc.Packages, p)
		rel(spdxImage, p.PackageSPDXIdentifier, "CONTAINS")
	}
	for _, e := range m.packages {
		p := spdxPackage(e)
		doc.Packages = append(doc.Packages, p)
		if !e.source {
			rel(spdxImage, p.PackageSPDXIdentifier, "CONTAINS")
		}
		if e.src != "" {
			rel(p.PackageSPDXIdentifier, spdxID("Package", e.src), "GENERATED_FROM")
		}
	}
	slices.SortFunc(doc.Relationships[1:], func(a, b *spdx.Relationship) int {
		return cmp.Or(cmp.Compare(a.RefA.ElementRefID, b.RefA.ElementRefID),
			cmp.Compare(a.Relationship, b.Relationship), cmp.Compare(a.RefB.ElementRefID, b.RefB.ElementRefID))
	})
	if m.partial {
		text := m.partialText()
		doc.DocumentComment = text
		doc.Annotations = append(doc.Annotations, &spdx.Annotation{
			Annotator:                common.Annotator{Annotator: tool.Creator, AnnotatorType: "Tool"},
			AnnotationDate:           m.created,
			AnnotationType:           "OTHER",
			AnnotationSPDXIdentifier: docID(spdxDocument),
			AnnotationComment:        text,
		})
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		return nil, fmt.Errorf("sbom: SPDX document for %s: %w", m.rep.Hash, err)
	}
	return doc, nil
}

// spdxDocument is the document made by tool, holding the image's package
// alone.
func (m *model) spdxDocument(tool common.Creator) *spdx.Document {
	alg, hexValue := digestHash(m.rep.Hash)
	sum := common.SHA256
	if alg == "sha512" {
		sum = common.SHA512
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    spdxDocument,
		DocumentName:      m.name,
		DocumentNamespace: NamespacePrefix + alg + "/" + hexValue,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{tool},
			Created:  m.created,
		},
	}
	image := &spdx.Package{
		PackageName:             m.name,
		PackageSPDXIdentifier:   spdxImage,
		PackageVersion:          string(m.rep.Hash),
		PackageDownloadLocation: noAssertion,
		PackageChecksums:        []common.Checksum{{Algorithm: sum, Value: hexValue}},
		PrimaryPackagePurpose:   purposeContainer,
		PackageComment:          fmt.Sprintf("Index report state %s.", m.rep.State),
	}
	if m.rep.ScannerState != "" {
		image.PackageComment += " Scanner state " + m.rep.ScannerState + "."
	}
	doc.Packages = append(doc.Packages, image)
	return doc
}

// spdxDistro is the operating-system package of a distribution.
func spdxDistro(d *distro) *spdx.Package {
	name, version := d.d.DID, d.d.VersionID
	if name == "" {
		name = d.d.Name
	}
	if version == "" {
		version = d.d.Version
	}
	p := &spdx.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   spdxID("OperatingSystem", d.ref),
		PackageVersion:          version,
		PackageDownloadLocation: noAssertion,
		PackageDescription:      d.d.PrettyName,
		PrimaryPackagePurpose:   purposeOS,
	}
	if d.d.CPE != "" {
		p.PackageExternalReferences = append(p.PackageExternalReferences, &spdx.PackageExternalReference{
			Category: "SECURITY", RefType: cpeRefType(d.d.CPE), Locator: d.d.CPE})
	}
	return p
}

// spdxPackage is the library or source package of a package, with its PURL
// and CPE as references and where it was found as its source information.
func spdxPackage(e *pkg) *spdx.Package {
	p := &spdx.Package{
		PackageName:             e.p.Name,
		PackageSPDXIdentifier:   spdxID("Package", e.ref),
		PackageVersion:          e.p.Version,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   purposeLibrary,
	}
	if e.source {
		p.PrimaryPackagePurpose = purposeSource
	}
	if e.p.PURL != "" {
		p.PackageExternalReferences = append(p.PackageExternalReferences, &spdx.PackageExternalReference{
			Category: "PACKAGE-MANAGER", RefType: "purl", Locator: e.p.PURL})
	}
	if e.p.CPE != "" {
		p.PackageExternalReferences = append(p.PackageExternalReferences, &spdx.PackageExternalReference{
			Category: "SECURITY", RefType: cpeRefType(e.p.CPE), Locator: e.p.CPE})
	}
	if len(e.envs) > 0 {
		locs := make([]string, len(e.envs))
		for i, env := range e.envs {
			locs[i] = fmt.Sprintf("read from %s in layer %s", env.PackageDB, env.IntroducedIn)
		}
		p.PackageSourceInfo = strings.Join(locs, "; ")
	}
	return p
}

// cpeRefType is the SPDX reference type of a CPE: cpe23Type for a CPE 2.3
// formatted string, cpe22Type for a URI.
func cpeRefType(cpe string) string {
	if strings.HasPrefix(cpe, "cpe:2.3:") {
		return "cpe23Type"
	}
	return "cpe22Type"
}
