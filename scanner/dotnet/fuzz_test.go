package dotnet

import (
	"testing"

	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzParseDeps is seeded with the testdata's deps.json files (Trivy, Syft,
// osv-scalibr test data). A file is never an error of Scan, only a warning
// naming it; a package has valid fields.
func FuzzParseDeps(f *testing.F) {
	l := scannertest.Lang{Scanner: Scanner{}, Path: "app/X.deps.json", PURLPrefix: "pkg:nuget/", Many: true}
	scannertest.FuzzLang(f, l, "*.deps.json")
}
