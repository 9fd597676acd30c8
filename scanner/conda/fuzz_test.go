package conda

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzParseRecord is seeded with the testdata's conda-meta records (Trivy, Syft,
// osv-scalibr test data). A file is never an error of Scan, only a warning
// naming it; a package has valid fields.
func FuzzParseRecord(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "opt/conda/conda-meta/x-1-0.json"
		res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(path, data)})
		if err != nil {
			t.Fatalf("content error is not a warning: %v", err)
		}
		if len(res.Warnings) > 0 && (len(res.Packages) > 0 || !strings.Contains(res.Warnings[0], path)) {
			t.Fatalf("warnings %q with %d packages", res.Warnings, len(res.Packages))
		}
		for _, p := range res.Packages {
			if _, err := langpkg.Value(p.Name); err != nil {
				t.Fatalf("name %q: %v", p.Name, err)
			}
			if _, err := langpkg.Value(p.Version); err != nil {
				t.Fatalf("version %q: %v", p.Version, err)
			}
			if !strings.HasPrefix(p.PURL, "pkg:conda/") || p.Filepath != path {
				t.Fatalf("package %+v", p)
			}
		}
	})
}
