package python

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func sha256Digest(b []byte) report.Digest {
	s := sha256.Sum256(b)
	return report.Digest("sha256:" + hex.EncodeToString(s[:]))
}

// FuzzParseMetadata is seeded with the corpus's core-metadata files
// (aquasecurity/trivy, anchore/syft, google/osv-scalibr test data). It checks
// that Scan never fails on content (a bad file is a warning naming it), that
// a package has valid fields, and that ParseMetadata agrees with Scan.
func FuzzParseMetadata(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(fixtures.Path(f, "python"), "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		if strings.HasSuffix(p, ".tar") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Name: x\r\nVersion: 1\r\n\r\nbody"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "usr/lib/python3/site-packages/x-1.dist-info/METADATA"
		res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(path, data)})
		if err != nil {
			t.Fatalf("content error is not a warning: %v", err)
		}
		md, perr := ParseMetadata(strings.NewReader(string(data)))
		switch {
		case len(res.Packages)+len(res.Warnings) != 1:
			t.Fatalf("%d packages and %d warnings", len(res.Packages), len(res.Warnings))
		case len(res.Warnings) == 1:
			if perr == nil || !strings.Contains(res.Warnings[0], path) {
				t.Fatalf("warning %q, ParseMetadata error %v", res.Warnings[0], perr)
			}
		default:
			p := res.Packages[0]
			if perr != nil || p.Name != md.Name || p.Version != md.Version {
				t.Fatalf("package %+v, ParseMetadata %+v, %v", p, md, perr)
			}
			if _, err := langpkg.Value(p.Name); err != nil {
				t.Fatalf("name %q: %v", p.Name, err)
			}
			if _, err := langpkg.Value(p.Version); err != nil {
				t.Fatalf("version %q: %v", p.Version, err)
			}
			if !strings.HasPrefix(p.PURL, "pkg:pypi/") || p.Filepath != path || p.PackageDB != path || p.Kind != report.KindBinary {
				t.Fatalf("package %+v", p)
			}
		}
	})
}
