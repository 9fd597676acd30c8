package npm

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	if got := (Scanner{}).Info(); got != (scanner.Info{Name: "npm", Version: "1", Kind: scanner.KindPackage}) {
		t.Errorf("Info() = %+v", got)
	}
	for p, want := range map[string]bool{
		"app/node_modules/express/package.json":                           true,
		"node_modules/express/package.json":                               true,
		"app/node_modules/@babel/parser/package.json":                     true,
		"app/node_modules/express/node_modules/debug/package.json":        true,
		"app/node_modules/a/node_modules/@types/node/package.json":        true,
		"usr/lib/node_modules/npm/package.json":                           true,
		"app/package.json":                                                false,
		"package.json":                                                    false,
		"app/node_modules/package.json":                                   false,
		"app/node_modules/@babel/package.json":                            false,
		"app/node_modules/es-abstract/2015/package.json":                  false,
		"app/node_modules/express/lib/package.json":                       false,
		"app/node_modules/@babel/parser/test/fixtures/x/package.json":     false,
		"app/node_modules/.package-lock.json":                             false,
		"app/node_modules/.bin/package.json":                              false,
		"app/node_modules/@/x/package.json":                               false,
		"app/node_modules/@a/@b/package.json":                             false,
		"app/node_modules/express/package.json.bak":                       false,
		"app/node_modules/node_modules/package.json":                      false,
		"app/node_modules/express/node_modules/node_modules/package.json": false,
	} {
		if got := (Scanner{}).Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestFixtures scans the corpus's installed manifests (aquasecurity/trivy's
// npm "happy" tree and anchore/syft's pkg-json and pkg-lock test data; names
// and versions from testdata/fixtures/SOURCES.md) at the paths they had
// upstream.
func TestFixtures(t *testing.T) {
	cases := []struct {
		fixture, path, name, version, purl string
	}{
		{"npm/trivy_happy_nm-express_package.json", "app/node_modules/express/package.json", "express", "4.16.4", "pkg:npm/express@4.16.4"},
		{"npm/trivy_happy_nm-body-parser_package.json", "app/node_modules/body-parser/package.json", "body-parser", "1.18.3", "pkg:npm/body-parser@1.18.3"},
		{"npm/trivy_happy_nm-ms_package.json", "app/node_modules/ms/package.json", "ms", "2.1.1", "pkg:npm/ms@2.1.1"},
		{"npm/trivy_happy_nm-babel_parser_package.json", "app/node_modules/@babel/parser/package.json", "@babel/parser", "7.23.6", "pkg:npm/%40babel/parser@7.23.6"},
		{"npm/trivy_happy_nm-express_nm-debug_package.json", "app/node_modules/express/node_modules/debug/package.json", "debug", "2.6.9", "pkg:npm/debug@2.6.9"},
		{"npm/trivy_happy_nm-express_nm-ms_package.json", "app/node_modules/express/node_modules/ms/package.json", "ms", "2.0.0", "pkg:npm/ms@2.0.0"},
		{"npm/trivy_happy_nm-body-parser_nm-debug_package.json", "app/node_modules/body-parser/node_modules/debug/package.json", "debug", "2.6.9", "pkg:npm/debug@2.6.9"},
		{"npm/trivy_happy_nm-body-parser_nm-ms_package.json", "app/node_modules/body-parser/node_modules/ms/package.json", "ms", "2.0.0", "pkg:npm/ms@2.0.0"},
		{"npm/syft_npm-6.14.6_package.json", "usr/lib/node_modules/npm/package.json", "npm", "6.14.6", "pkg:npm/npm@6.14.6"},
		{"npm/syft_cowsay_package.json", "app/node_modules/cowsay/package.json", "cowsay", "1.4.0", "pkg:npm/cowsay@1.4.0"},
		{"npm/syft_actions-core_package.json", "app/node_modules/@actions/core/package.json", "@actions/core", "1.6.0", "pkg:npm/%40actions/core@1.6.0"},
	}
	var files []scanner.File
	for _, tc := range cases {
		if !(Scanner{}).Match(tc.path) {
			t.Fatalf("%s not matched", tc.path)
		}
		files = append(files, scannertest.FromDisk(t, tc.path, fixtures.Path(t, tc.fixture)))
	}
	res, err := Scanner{}.Scan(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 || len(res.Packages) != len(cases) {
		t.Fatalf("%d packages, warnings %q", len(res.Packages), res.Warnings)
	}
	got := map[string]report.Package{}
	for _, p := range res.Packages {
		got[p.Filepath] = *p
	}
	for _, tc := range cases {
		want := report.Package{Name: tc.name, Version: tc.version, Kind: report.KindBinary, PURL: tc.purl, PackageDB: tc.path, Filepath: tc.path}
		if got[tc.path] != want {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.fixture, got[tc.path], want)
		}
	}
}

// The lockfile is not a package manifest: it is not matched, and if handed
// over it is skipped (no name), with a warning.
func TestLockfileIsNotAManifest(t *testing.T) {
	if (Scanner{}).Match("app/package-lock.json") || (Scanner{}).Match("app/node_modules/.package-lock.json") {
		t.Error("lockfile matched")
	}
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{
		scannertest.FromDisk(t, "app/node_modules/x/package.json", fixtures.Path(t, "npm/trivy_happy_package-lock.json"))})
	if err != nil || len(res.Packages) != 0 || len(res.Warnings) != 1 {
		t.Errorf("packages %v, warnings %q, err %v", res.Packages, res.Warnings, err)
	}
}

func TestBadInput(t *testing.T) {
	good := scannertest.File("n/node_modules/good/package.json", []byte(`{"name":"good","version":"1.0.0"}`))
	for _, tc := range []struct {
		name, data, warn string
	}{
		{"not JSON", `{"name": "x", `, "not a JSON object"},
		{"array", `["name", "x"]`, "not a JSON object"},
		{"empty", ``, "not a JSON object"},
		{"version not a string", `{"name":"x","version":1.2}`, "version: not a string"},
		{"name not a string", `{"name":{"a":1},"version":"1"}`, "name: not a string"},
		{"no version", `{"name":"x"}`, "no name or no version"},
		{"no name", `{"version":"1.0.0"}`, "no name or no version"},
		{"null name", `{"name":null,"version":"1.0.0"}`, "no name or no version"},
		{"invalid UTF-8 name", "{\"name\":\"caf\xe9\",\"version\":\"1\"}", "U+FFFD"},
		{"escaped control in version", `{"name":"x","version":"1\u0000"}`, "blanks or control"},
		{"bad scope", `{"name":"a/b","version":"1"}`, "@scope/name"},
		{"scope only", `{"name":"@a","version":"1"}`, "scope without a name"},
		{"deep name", `{"name":"@a/b/c","version":"1"}`, "@scope/name"},
		{"long name", `{"name":"` + strings.Repeat("a", 215) + `","version":"1"}`, "more than npm's 214"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := scannertest.File("n/node_modules/bad/package.json", []byte(tc.data))
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{bad, good})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != 1 || res.Packages[0].Name != "good" {
				t.Errorf("packages %v", res.Packages)
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "n/node_modules/bad/package.json") || !strings.Contains(res.Warnings[0], tc.warn) {
				t.Errorf("warnings %q, want one naming the file and %q", res.Warnings, tc.warn)
			}
		})
	}

	// A private manifest without a version (a workspace link) is skipped
	// quietly; a private one with a version is a package.
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{
		scannertest.File("n/node_modules/ws/package.json", []byte(`{"name":"ws-app","private":true}`)),
		scannertest.File("n/node_modules/wv/package.json", []byte(`{"name":"wv-app","version":"0.1.0","private":true}`)),
	})
	if err != nil || len(res.Warnings) != 0 || len(res.Packages) != 1 || res.Packages[0].Name != "wv-app" {
		t.Errorf("private: packages %v, warnings %q, err %v", res.Packages, res.Warnings, err)
	}

	// Too large: skipped with a warning, whether the size says so or the
	// content does.
	big := strings.Repeat(" ", MaxFileSize+1)
	liar := scannertest.FileFunc("n/node_modules/liar/package.json", 10, func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(big)), nil
	})
	huge := scannertest.FileFunc("n/node_modules/huge/package.json", MaxFileSize+1, func() (io.ReadCloser, error) {
		t.Error("a file over the limit was opened")
		return nil, errors.New("opened")
	})
	res, err = Scanner{}.Scan(context.Background(), []scanner.File{liar, huge})
	if err != nil || len(res.Warnings) != 2 || !strings.Contains(res.Warnings[0], "more than the limit") {
		t.Errorf("too large: warnings %q, err %v", res.Warnings, err)
	}

	broken := scannertest.FileFunc("n/node_modules/broken/package.json", 10, func() (io.ReadCloser, error) { return nil, os.ErrPermission })
	if _, err := (Scanner{}).Scan(context.Background(), []scanner.File{broken}); !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "broken/package.json") {
		t.Errorf("open error: %v", err)
	}
}

// FuzzParseManifest is seeded with the corpus's package.json files
// (aquasecurity/trivy and anchore/syft test data). Scan never fails on
// content; a package has valid fields and a pkg:npm PURL.
func FuzzParseManifest(f *testing.F) {
	fixtures.Seed(f, "npm", "*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "app/node_modules/x/package.json"
		res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(path, data)})
		if err != nil {
			t.Fatalf("content error is not a warning: %v", err)
		}
		if len(res.Packages) > 1 {
			t.Fatalf("%d packages", len(res.Packages))
		}
		for _, w := range res.Warnings {
			if !strings.Contains(w, path) {
				t.Fatalf("warning %q does not name the file", w)
			}
		}
		for _, p := range res.Packages {
			if _, err := langpkg.Value(p.Name); err != nil {
				t.Fatalf("name %q: %v", p.Name, err)
			}
			if _, err := langpkg.Value(p.Version); err != nil {
				t.Fatalf("version %q: %v", p.Version, err)
			}
			if !strings.HasPrefix(p.PURL, "pkg:npm/") || p.Filepath != path || p.PackageDB != path {
				t.Fatalf("package %+v", p)
			}
		}
	})
}
