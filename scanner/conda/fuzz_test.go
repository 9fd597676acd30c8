package conda

import (
	"testing"

	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzParseRecord is seeded with the testdata's conda-meta records (Trivy, Syft,
// osv-scalibr test data). A file is never an error of Scan, only a warning
// naming it; a package has valid fields.
func FuzzParseRecord(f *testing.F) {
	l := scannertest.Lang{Scanner: Scanner{}, Path: "opt/conda/conda-meta/x-1-0.json", PURLPrefix: "pkg:conda/", One: true}
	scannertest.FuzzLang(f, l, "*.json")
}
