package rust

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzParseLock is seeded with the Cargo.lock files of testdata (Trivy,
// Syft, osv-scalibr test data). A lock file is never an error of Scan, only
// a warning naming it; a package has valid fields.
func FuzzParseLock(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.lock*"))
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
		const path = "app/Cargo.lock"
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
			if !strings.HasPrefix(p.PURL, "pkg:cargo/") || p.Filepath != path {
				t.Fatalf("package %+v", p)
			}
		}
	})
}

// FuzzParseDepInfo is seeded with the .dep-v0 sections of the testdata's
// cargo-auditable executables. Any input is crates or a *ParseError.
func FuzzParseDepInfo(f *testing.F) {
	for _, name := range []string{"trivy_executable_rust", "scalibr_uses_serde_json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		sec, err := depSection(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sec)
	}
	f.Add(deflate(f, []byte(`{"packages":[{"name":"a","version":"1","kind":"build"}]}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		crates, err := ParseDepInfo(bytes.NewReader(data))
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("not a ParseError: %v", err)
		}
		for _, c := range crates {
			if _, err := langpkg.Value(c.Name); err != nil {
				t.Fatalf("name %q: %v", c.Name, err)
			}
		}
	})
}
