package java

import (
	"context"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func addFixtures(f *testing.F, glob string) {
	fixtures.Seed(f, "java", glob)
}

// FuzzParseManifest is seeded with the MANIFEST.MF files quay/claircore
// extracted from real jars. Keys are lowercase and without blanks; a
// manifest and the same with CRLF line ends parse the same.
func FuzzParseManifest(f *testing.F) {
	addFixtures(f, "claircore_manifest_*.MF")
	f.Fuzz(func(t *testing.T, data []byte) {
		m := ParseManifest(data)
		for k := range m {
			if k == "" || k != strings.ToLower(k) || strings.ContainsAny(k, " \t\r\n") {
				t.Fatalf("key %q", k)
			}
		}
		if !strings.Contains(string(data), "\r") {
			crlf := ParseManifest([]byte(strings.ReplaceAll(string(data), "\n", "\r\n")))
			if len(crlf) != len(m) {
				t.Fatalf("LF %q, CRLF %q", m, crlf)
			}
			for k, v := range m {
				if crlf[k] != v {
					t.Fatalf("%s: LF %q, CRLF %q", k, v, crlf[k])
				}
			}
		}
	})
}

// FuzzParseProperties is seeded with the pom.properties files
// quay/claircore extracted from real jars. The result is valid UTF-8
// (ISO-8859-1 decoded), and pomOf accepts only valid values.
func FuzzParseProperties(f *testing.F) {
	addFixtures(f, "claircore_properties_*.pom.properties")
	f.Add([]byte("a\\\n b=c\\u00e9\\\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		props := ParseProperties(data)
		for k, v := range props {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("%q=%q", k, v)
			}
		}
		if p, err := pomOf(props); err == nil {
			for _, v := range []string{p.group, p.artifact, p.version} {
				if _, err := langpkg.Value(v); err != nil {
					t.Fatalf("%q: %v", v, err)
				}
			}
		}
	})
}

// FuzzScan feeds arbitrary archives to the scanner, seeded with the small
// jars of the corpus (google/osv-scalibr, aquasecurity/trivy,
// quay/claircore): never an error (a bad archive is a warning naming it),
// never a package without a name, a version and a pkg:maven PURL.
func FuzzScan(f *testing.F) {
	for _, name := range []string{"scalibr_complex.jar", "trivy_nested.jar", "claircore_inner.jar"} {
		b := scannertest.ReadFixture(f, "java/"+name)
		f.Add(b)
	}
	tmp := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "app/x-1.0.jar"
		res, err := Scanner{TempDir: tmp, MaxTotalBytes: 64 << 20}.Scan(context.Background(), []scanner.File{scannertest.File(path, data)})
		if err != nil {
			t.Fatalf("content error: %v", err)
		}
		for _, w := range res.Warnings {
			if !strings.Contains(w, path) {
				t.Fatalf("warning %q does not name the file", w)
			}
		}
		for _, p := range res.Packages {
			if p.Name == "" || p.Version == "" || !strings.HasPrefix(p.PURL, "pkg:maven/") || p.Filepath != path {
				t.Fatalf("package %+v", p)
			}
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Fatalf("temp files left: %v", left)
		}
	})
}

// FuzzGroup feeds arbitrary paths to the repository-layout parser and
// arbitrary manifests to the manifest rule: neither panics, and a group
// found is a valid value that the path or the manifest holds.
func FuzzGroup(f *testing.F) {
	f.Add("root/.m2/repository/org/apache/commons/commons-lang3/3.12.0/commons-lang3-3.12.0.jar", "Bundle-SymbolicName: com.fasterxml.jackson.core.jackson-core\nImplementation-Vendor-Id: com.fasterxml.jackson.core\n", "jackson-core")
	f.Add("usr/share/maven-repo/commons-logging/commons-logging/1.2/commons-logging-1.2.pom", "Automatic-Module-Name: io.micronaut.micronaut_aop\n", "micronaut-aop")
	f.Fuzz(func(t *testing.T, p, manifest, artifact string) {
		if g, a, v, ok := repoCoordinates(p); ok && (g == "" || a == "" || v == "" || !strings.Contains(p, a+"/"+v+"/")) {
			t.Fatalf("%q: %q %q %q", p, g, a, v)
		}
		isDebianPOM(p)
		if g := manifestGroup(ParseManifest([]byte(manifest)), artifact); g != "" && !strings.Contains(manifest, g) {
			t.Fatalf("group %q not in the manifest", g)
		}
	})
}
