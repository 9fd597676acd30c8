package dpkg

import (
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzParse is seeded with every dpkg fixture of the corpus (quay/claircore,
// anchore/syft, aquasecurity/trivy and google/osv-scalibr test data). It
// checks that parsing never panics, that errors name the file, that every
// package reported has the fields the scanner promises, and that the result
// does not depend on line endings.
func FuzzParse(f *testing.F) {
	fixtures.Seed(f, "dpkg", "*")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, path := range []string{"var/lib/dpkg/status", "var/lib/dpkg/status.d/x"} {
			scannertest.CheckDatabaseContent(t, database(path), path, data)
		}
	})
}

// database is what the scanner promises of a package found at path.
func database(path string) scannertest.Database {
	return scannertest.Database{
		Scanner: Scanner{},
		Check: func(p *report.Package) string {
			if p.Name == "" || p.Version == "" || p.Source == nil || p.Source.Name == "" ||
				p.Source.Version == "" || p.PURL == "" || p.PackageDB != path {
				return "incomplete"
			}
			if checkPackageName(p.Name) != nil || checkVersion(p.Version) != nil || checkVersion(p.Source.Version) != nil {
				return "invalid"
			}
			return ""
		},
		Same: func(a, b *report.Package) bool {
			return a.Name == b.Name && a.Version == b.Version && a.Arch == b.Arch && a.Source.Name == b.Source.Name && a.Source.Version == b.Source.Version
		},
	}
}
