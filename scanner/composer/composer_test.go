package composer

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "composer", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"}, map[string]bool{
		"var/www/html/vendor/composer/installed.json": true,
		"app/lib/composer/installed.json":             true, // a vendor-dir of another name
		"vendor/composer/installed.php":               false,
		"app/installed.json":                          false,
		"app/composer.lock":                           false,
		"app/vendor/composer/installed.json.bak":      false,
	})
}

// TestFixtures scans upstream projects' test data (testdata/SOURCES.md)
// and compares with what those projects' own tests expect.
func TestFixtures(t *testing.T) {
	const path = "var/www/html/vendor/composer/installed.json"
	syft := []string{
		"asm89/stack-cors 1.3.0 pkg:composer/asm89/stack-cors@1.3.0",
		"behat/mink v1.8.1 pkg:composer/behat/mink@v1.8.1",
	}
	scannertest.CheckTestdata(t, Scanner{}, []scannertest.Testdata{
		// Syft syft/pkg/cataloger/php/parse_installed_json_test.go: the
		// same two packages in Composer 1's and 2's formats.
		{File: "syft_composer_1_installed.json", Path: path, Want: syft},
		{File: "syft_composer_2_installed.json", Path: path, Want: syft},
		// Trivy pkg/fanal/analyzer/language/php/composer/vendor_test.go.
		{File: "trivy_happy_installed.json", Path: path, Want: []string{
			"pear/log 1.13.3 pkg:composer/pear/log@1.13.3",
			"pear/pear_exception v1.0.2 pkg:composer/pear/pear_exception@v1.0.2",
		}},
		// Trivy integration/testdata/composer.vendor.json.golden.
		{File: "trivy_integration_installed.json", Path: path, Want: []string{
			"guzzlehttp/psr7 1.8.3 pkg:composer/guzzlehttp/psr7@1.8.3",
			"psr/http-message 1.1 pkg:composer/psr/http-message@1.1",
			"ralouphie/getallheaders 3.0.3 pkg:composer/ralouphie/getallheaders@3.0.3",
		}},
	}, nil)
}

func TestParseInstalled(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       []Package
		err        string
	}{
		{"v1", ` [{"name":"a/b","version":"1.0"}]`, []Package{{"a/b", "1.0"}}, ""},
		{"v2", "\ufeff{\"packages\":[{\"name\":\"a/b\",\"version\":\"dev-main\"}],\"dev\":true}", []Package{{"a/b", "dev-main"}}, ""},
		{"v2 empty", `{"packages":[]}`, []Package{}, ""},
		{"no packages", `{"dev":true}`, nil, `no "packages"`},
		{"not json", `{"packages":[`, nil, "not a Composer"},
		{"v1 not json", `[{`, nil, "not a Composer 1"},
		{"string", `"x"`, nil, "not a Composer"},
		{"no vendor", `[{"name":"b","version":"1"}]`, nil, "not vendor/name"},
		{"three parts", `[{"name":"a/b/c","version":"1"}]`, nil, "not vendor/name"},
		{"no version", `[{"name":"a/b"}]`, nil, "version: empty"},
		{"blank name", `[{"name":"a/b c","version":"1"}]`, nil, "blanks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseInstalled([]byte(tc.json))
			if tc.err != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want a ParseError with %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// Bad files are skipped with a warning naming them; the others are still
// reported. Only a failure to open or read is an error.
func TestBadInput(t *testing.T) {
	valid := []byte(`[{"name":"x/y","version":"1"}]`)
	good := scannertest.File("a/vendor/composer/installed.json", valid)
	scannertest.CheckBadFiles(t, Scanner{}, good, "x/y", "b/vendor/composer/installed.json", []scannertest.BadFile{
		{Name: "not json", Data: `[{"name":`, Warn: "not a Composer 1"},
	})
	scannertest.CheckSkips(t, scannertest.Skips{Scanner: Scanner{}, Path: "c/vendor/composer/installed.json", Limit: MaxFileSize, Valid: valid})
}
