package dpkg

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner"
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
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(path, data)})
			if err != nil {
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q does not name %s", err, path)
				}
				continue
			}
			for _, p := range res.Packages {
				if p.Name == "" || p.Version == "" || p.Source == nil || p.Source.Name == "" ||
					p.Source.Version == "" || p.PURL == "" || p.PackageDB != path {
					t.Fatalf("incomplete package %+v", p)
				}
				if checkPackageName(p.Name) != nil || checkVersion(p.Version) != nil || checkVersion(p.Source.Version) != nil {
					t.Fatalf("invalid package %+v", p)
				}
			}
			if bytes.Contains(data, []byte("\r")) {
				continue
			}
			crlf := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
			res2, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(path, crlf)})
			if err != nil {
				t.Fatalf("LF version parses, CRLF version: %v", err)
			}
			if len(res2.Packages) != len(res.Packages) {
				t.Fatalf("LF: %d packages, CRLF: %d", len(res.Packages), len(res2.Packages))
			}
			for i := range res.Packages {
				a, b := res.Packages[i], res2.Packages[i]
				if a.Name != b.Name || a.Version != b.Version || a.Arch != b.Arch || a.Source.Name != b.Source.Name || a.Source.Version != b.Source.Version {
					t.Fatalf("LF %+v != CRLF %+v", a, b)
				}
			}
		}
	})
}
