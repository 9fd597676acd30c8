package apk

import (
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzParse is seeded with every apk fixture of the corpus (google/osv-scalibr,
// anchore/syft and aquasecurity/trivy test data). It checks that parsing
// never panics, that errors name the file, that reported packages are
// complete, and that the result does not depend on line endings.
func FuzzParse(f *testing.F) {
	fixtures.Seed(f, "apk", "*")
	d := scannertest.Database{
		Scanner: Scanner{},
		Check: func(p *report.Package) string {
			if p.Name == "" || p.Version == "" || p.Source == nil || p.Source.Name == "" || p.PURL == "" ||
				strings.ContainsAny(p.Name+p.Version+p.Arch+p.Source.Name, " \t\r\n\x00") {
				return "bad"
			}
			return ""
		},
		Same: func(a, b *report.Package) bool {
			return a.Name == b.Name && a.Version == b.Version && a.Arch == b.Arch && a.Source.Name == b.Source.Name
		},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		scannertest.CheckDatabaseContent(t, d, "lib/apk/db/installed", data)
	})
}
