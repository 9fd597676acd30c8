package composer

import (
	"testing"

	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzParseInstalled is seeded with the testdata's installed.json files
// (Trivy and Syft test data). A file is never an error of Scan, only a
// warning naming it; a package has valid fields.
func FuzzParseInstalled(f *testing.F) {
	l := scannertest.Lang{Scanner: Scanner{}, Path: "app/vendor/composer/installed.json", PURLPrefix: "pkg:composer/", Many: true}
	scannertest.FuzzLang(f, l, "*.json")
}
