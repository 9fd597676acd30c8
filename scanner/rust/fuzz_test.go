package rust

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzParseLock is seeded with the Cargo.lock files of testdata (Trivy,
// Syft, osv-scalibr test data). A lock file is never an error of Scan, only
// a warning naming it; a package has valid fields.
func FuzzParseLock(f *testing.F) {
	l := scannertest.Lang{Scanner: Scanner{}, Path: "app/Cargo.lock", PURLPrefix: "pkg:cargo/", Many: true}
	scannertest.FuzzLang(f, l, "*.lock*")
}

// FuzzParseDepInfo is seeded with the .dep-v0 sections of the testdata's
// cargo-auditable executables. Any input is crates or a *ParseError.
func FuzzParseDepInfo(f *testing.F) {
	for _, name := range []string{"trivy_executable_rust", "scalibr_uses_serde_json"} {
		b := scannertest.ReadFile(f, filepath.Join("testdata", name))
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
