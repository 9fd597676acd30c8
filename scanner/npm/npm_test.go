package npm

import (
	"context"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "npm", Version: "1", Kind: scanner.KindPackage}, map[string]bool{
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
	})
}

// TestFixtures scans the corpus's installed manifests (aquasecurity/trivy's
// npm "happy" tree and anchore/syft's pkg-json and pkg-lock test data; names
// and versions from testdata/fixtures/SOURCES.md) at the paths they had
// upstream.
func TestFixtures(t *testing.T) {
	scannertest.CheckLangFixtures(t, Scanner{}, []scannertest.LangFixture{
		{Fixture: "npm/trivy_happy_nm-express_package.json", Path: "app/node_modules/express/package.json", Name: "express", Version: "4.16.4", PURL: "pkg:npm/express@4.16.4"},
		{Fixture: "npm/trivy_happy_nm-body-parser_package.json", Path: "app/node_modules/body-parser/package.json", Name: "body-parser", Version: "1.18.3", PURL: "pkg:npm/body-parser@1.18.3"},
		{Fixture: "npm/trivy_happy_nm-ms_package.json", Path: "app/node_modules/ms/package.json", Name: "ms", Version: "2.1.1", PURL: "pkg:npm/ms@2.1.1"},
		{Fixture: "npm/trivy_happy_nm-babel_parser_package.json", Path: "app/node_modules/@babel/parser/package.json", Name: "@babel/parser", Version: "7.23.6", PURL: "pkg:npm/%40babel/parser@7.23.6"},
		{Fixture: "npm/trivy_happy_nm-express_nm-debug_package.json", Path: "app/node_modules/express/node_modules/debug/package.json", Name: "debug", Version: "2.6.9", PURL: "pkg:npm/debug@2.6.9"},
		{Fixture: "npm/trivy_happy_nm-express_nm-ms_package.json", Path: "app/node_modules/express/node_modules/ms/package.json", Name: "ms", Version: "2.0.0", PURL: "pkg:npm/ms@2.0.0"},
		{Fixture: "npm/trivy_happy_nm-body-parser_nm-debug_package.json", Path: "app/node_modules/body-parser/node_modules/debug/package.json", Name: "debug", Version: "2.6.9", PURL: "pkg:npm/debug@2.6.9"},
		{Fixture: "npm/trivy_happy_nm-body-parser_nm-ms_package.json", Path: "app/node_modules/body-parser/node_modules/ms/package.json", Name: "ms", Version: "2.0.0", PURL: "pkg:npm/ms@2.0.0"},
		{Fixture: "npm/syft_npm-6.14.6_package.json", Path: "usr/lib/node_modules/npm/package.json", Name: "npm", Version: "6.14.6", PURL: "pkg:npm/npm@6.14.6"},
		{Fixture: "npm/syft_cowsay_package.json", Path: "app/node_modules/cowsay/package.json", Name: "cowsay", Version: "1.4.0", PURL: "pkg:npm/cowsay@1.4.0"},
		{Fixture: "npm/syft_actions-core_package.json", Path: "app/node_modules/@actions/core/package.json", Name: "@actions/core", Version: "1.6.0", PURL: "pkg:npm/%40actions/core@1.6.0"},
	})
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
	scannertest.CheckBadFiles(t, Scanner{}, good, "good", "n/node_modules/bad/package.json", []scannertest.BadFile{
		{Name: "not JSON", Data: `{"name": "x", `, Warn: "not a JSON object"},
		{Name: "array", Data: `["name", "x"]`, Warn: "not a JSON object"},
		{Name: "empty", Data: ``, Warn: "not a JSON object"},
		{Name: "version not a string", Data: `{"name":"x","version":1.2}`, Warn: "version: not a string"},
		{Name: "name not a string", Data: `{"name":{"a":1},"version":"1"}`, Warn: "name: not a string"},
		{Name: "no version", Data: `{"name":"x"}`, Warn: "no name or no version"},
		{Name: "no name", Data: `{"version":"1.0.0"}`, Warn: "no name or no version"},
		{Name: "null name", Data: `{"name":null,"version":"1.0.0"}`, Warn: "no name or no version"},
		{Name: "invalid UTF-8 name", Data: "{\"name\":\"caf\xe9\",\"version\":\"1\"}", Warn: "U+FFFD"},
		{Name: "escaped control in version", Data: `{"name":"x","version":"1\u0000"}`, Warn: "blanks or control"},
		{Name: "bad scope", Data: `{"name":"a/b","version":"1"}`, Warn: "@scope/name"},
		{Name: "scope only", Data: `{"name":"@a","version":"1"}`, Warn: "scope without a name"},
		{Name: "deep name", Data: `{"name":"@a/b/c","version":"1"}`, Warn: "@scope/name"},
		{Name: "long name", Data: `{"name":"` + strings.Repeat("a", 215) + `","version":"1"}`, Warn: "more than npm's 214"},
	})

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
	// content does; an error opening or reading is an error.
	scannertest.CheckSkips(t, scannertest.Skips{Scanner: Scanner{}, Path: "n/node_modules/liar/package.json", Limit: MaxFileSize, Valid: []byte(`{"name":"good","version":"1.0.0"}`)})
}

// FuzzParseManifest is seeded with the corpus's package.json files
// (aquasecurity/trivy and anchore/syft test data). Scan never fails on
// content; a package has valid fields and a pkg:npm PURL.
func FuzzParseManifest(f *testing.F) {
	fixtures.Seed(f, "npm", "*.json")
	l := scannertest.Lang{Scanner: Scanner{}, Path: "app/node_modules/x/package.json", PURLPrefix: "pkg:npm/"}
	f.Fuzz(func(t *testing.T, data []byte) {
		scannertest.CheckLangContent(t, l, data)
	})
}
