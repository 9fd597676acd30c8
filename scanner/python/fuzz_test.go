package python

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

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
		b := scannertest.ReadFile(f, p)
		f.Add(b)
	}
	f.Add([]byte("Name: x\r\nVersion: 1\r\n\r\nbody"))
	const path = "usr/lib/python3/site-packages/x-1.dist-info/METADATA"
	l := scannertest.Lang{Scanner: Scanner{}, Path: path, PURLPrefix: "pkg:pypi/", One: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		res := scannertest.CheckLangContent(t, l, data)
		md, perr := ParseMetadata(strings.NewReader(string(data)))
		if len(res.Warnings) == 1 && perr == nil {
			t.Fatalf("warning %q, ParseMetadata error %v", res.Warnings[0], perr)
		}
		if len(res.Packages) == 1 {
			if p := res.Packages[0]; perr != nil || p.Name != md.Name || p.Version != md.Version {
				t.Fatalf("package %+v, ParseMetadata %+v, %v", p, md, perr)
			}
		}
	})
}
