package apk

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzParse is seeded with every apk fixture of the corpus (google/osv-scalibr,
// anchore/syft and aquasecurity/trivy test data). It checks that parsing
// never panics, that errors name the file, that reported packages are
// complete, and that the result does not depend on line endings.
func FuzzParse(f *testing.F) {
	fixtures.Seed(f, "apk", "*")
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "lib/apk/db/installed"
		res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(path, data)})
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %s", err, path)
			}
			return
		}
		for _, p := range res.Packages {
			if p.Name == "" || p.Version == "" || p.Source == nil || p.Source.Name == "" || p.PURL == "" ||
				strings.ContainsAny(p.Name+p.Version+p.Arch+p.Source.Name, " \t\r\n\x00") {
				t.Fatalf("bad package %+v (source %+v)", p, p.Source)
			}
		}
		if bytes.Contains(data, []byte("\r")) {
			return
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
			if a.Name != b.Name || a.Version != b.Version || a.Arch != b.Arch || a.Source.Name != b.Source.Name {
				t.Fatalf("LF %+v != CRLF %+v", a, b)
			}
		}
	})
}
