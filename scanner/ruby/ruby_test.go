package ruby

import (
	"context"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "ruby", Version: "1", Kind: scanner.KindPackage}, map[string]bool{
		"usr/local/bundle/specifications/rake-13.0.3.gemspec":                    true,
		"usr/lib/ruby/gems/3.1.0/specifications/default/bundler-2.3.7.gemspec":   true,
		"var/lib/gems/2.7.0/specifications/nokogiri-1.13.0-x86_64-linux.gemspec": true,
		"specifications/x-1.gemspec":                                             true,
		"app/rake.gemspec":                                                       false,
		"usr/lib/ruby/gems/3.1.0/gems/rake-13.0.3/rake.gemspec":                  false,
		"usr/local/bundle/specifications/.gemspec":                               false,
		"usr/local/bundle/specifications/x/y.gemspec":                            false,
		"default/x.gemspec":                                                      false,
		"x.gemspec":                                                              false,
		"usr/local/bundle/specifications/rake-13.0.3.gemspec.bak":                false,
		"usr/local/bundle/myspecifications/rake-13.0.3.gemspec":                  false,
	})
}

// TestFixtures scans the corpus's installed-gem specifications (anchore/syft,
// aquasecurity/trivy and google/osv-scalibr test data; names and versions
// from testdata/fixtures/SOURCES.md).
func TestFixtures(t *testing.T) {
	scannertest.CheckLangFixtures(t, Scanner{}, []scannertest.LangFixture{
		{Fixture: "ruby/syft_bundler.gemspec", Path: "usr/lib/ruby/gems/2.7.0/specifications/default/bundler-2.1.4.gemspec", Name: "bundler", Version: "2.1.4", PURL: "pkg:gem/bundler@2.1.4"},
		{Fixture: "ruby/syft_formatador.gemspec", Path: "usr/local/bundle/specifications/formatador-1.1.0.gemspec", Name: "formatador", Version: "1.1.0", PURL: "pkg:gem/formatador@1.1.0"},
		{Fixture: "ruby/trivy_normal00.gemspec", Path: "usr/local/bundle/specifications/rake-13.0.3.gemspec", Name: "rake", Version: "13.0.3", PURL: "pkg:gem/rake@13.0.3"},
		{Fixture: "ruby/trivy_multiple_licenses.gemspec", Path: "usr/local/bundle/specifications/test-unit-3.3.7.gemspec", Name: "test-unit", Version: "3.3.7", PURL: "pkg:gem/test-unit@3.3.7"},
		{Fixture: "ruby/scalibr_rss-0.2.9.gemspec", Path: "usr/local/bundle/specifications/rss-0.2.9.gemspec", Name: "rss", Version: "0.2.9", PURL: "pkg:gem/rss@0.2.9"},
	})
}

func TestParseGemspec(t *testing.T) {
	head := "Gem::Specification.new do |spec|\n"
	for _, tc := range []struct {
		name, src string
		want      Gemspec
	}{
		{"percent q angle", head + `  spec.name = %q<nokogiri>.freeze` + "\n" + `  spec.version = "1.13.0"` + "\n" + `  spec.platform = %q<x86_64-linux>` + "\n", Gemspec{"nokogiri", "1.13.0", "x86_64-linux"}},
		{"single quotes", head + `  spec.name = 'it\'s'` + "\n  spec.version = '1.0'\n", Gemspec{"it's", "1.0", ""}},
		{"percent parens and Q", head + `  spec.name = %Q(a-b)` + "\n  spec.version = %(2.0)\n", Gemspec{"a-b", "2.0", ""}},
		{"escapes", head + `  spec.name = "caf\u00e9\x21"` + "\n  spec.version = \"1\\u{2E}0\"\n", Gemspec{"café!", "1.0", ""}},
		{"Gem::Version.new", head + `  spec.name = "x"` + "\n" + `  spec.version = Gem::Version.new("3.2.1")` + "\n", Gemspec{"x", "3.2.1", ""}},
		{"braces block", "Gem::Specification.new { |g|\n  g.name = \"y\"\n  g.version = \"4\"\n}\n", Gemspec{"y", "4", ""}},
		{"stub only", "# stub: from-stub 9.9 java lib\n", Gemspec{"from-stub", "9.9", "java"}},
		{"stub fills the version", "# stub: st 7.0 ruby lib\n" + head + "  spec.name = \"st\"\n  spec.version = foo_version\n", Gemspec{"st", "7.0", "ruby"}},
		{"first assignment wins", head + "  spec.name = \"a\"\n  spec.name = \"b\"\n  spec.version = \"1\"\n", Gemspec{"a", "1", ""}},
		{"other variables ignored", head + "  other.name = \"no\"\n  spec.name = \"yes\"\n  spec.version = \"1\"\n", Gemspec{"yes", "1", ""}},
		{"before the block ignored", "s.name = \"no\"\n" + head + "  spec.name = \"yes\"\n  spec.version = \"1\"\n", Gemspec{"yes", "1", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseGemspec(strings.NewReader(tc.src))
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	head := "Gem::Specification.new do |s|\n"
	good := scannertest.File("g/specifications/good-1.gemspec", []byte(head+"  s.name = \"good\"\n  s.version = \"1\"\n"))
	scannertest.CheckBadFiles(t, Scanner{}, good, "good", "g/specifications/bad-1.gemspec", []scannertest.BadFile{
		{Name: "empty", Data: "", Warn: "name: empty"},
		{Name: "no version", Data: head + "  s.name = \"x\"\n", Warn: "version: empty"},
		{Name: "interpolation", Data: head + "  s.name = \"x#{1}\"\n  s.version = \"1\"\n", Warn: "interpolation"},
		{Name: "not a literal", Data: head + "  s.name = compute_name\n  s.version = \"1\"\n", Warn: "not a string literal"},
		{Name: "unterminated", Data: head + "  s.name = \"x\n  s.version = \"1\"\n", Warn: "unterminated"},
		{Name: "invalid UTF-8", Data: head + "  s.name = \"caf\xe9\"\n  s.version = \"1\"\n", Warn: "not valid UTF-8"},
		{Name: "escaped invalid UTF-8", Data: head + "  s.name = \"caf\\xe9\"\n  s.version = \"1\"\n", Warn: "not valid UTF-8"},
		{Name: "control character", Data: head + "  s.name = \"a\\nb\"\n  s.version = \"1\"\n", Warn: "blanks or control"},
		{Name: "bad unicode escape", Data: head + "  s.name = \"\\uZZZZ\"\n  s.version = \"1\"\n", Warn: `invalid \u escape`},
		{Name: "binary", Data: "\x00\x01\x02\xff", Warn: "name: empty"},
		{Name: "long line", Data: head + "  s.summary = \"" + strings.Repeat("x", maxLine) + "\"\n", Warn: "longer than"},
	})
	// Too large, by size or by content; an error opening or reading.
	scannertest.CheckSkips(t, scannertest.Skips{Scanner: Scanner{}, Path: "g/specifications/liar-1.gemspec", Limit: MaxFileSize, Valid: []byte(head + "  s.name = \"good\"\n  s.version = \"1\"\n"), Filler: []byte("#\n")})
	// A platform other than ruby is a PURL qualifier.
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("g/specifications/n.gemspec",
		[]byte(head+"  s.name = \"nokogiri\".freeze\n  s.version = \"1.13.0\"\n  s.platform = \"x86_64-linux\".freeze\n"))})
	if err != nil || len(res.Packages) != 1 || res.Packages[0].PURL != "pkg:gem/nokogiri@1.13.0?platform=x86_64-linux" {
		t.Errorf("platform: %v, %v", res.Packages, err)
	}
}

// FuzzParseGemspec is seeded with the corpus's gemspecs (anchore/syft,
// aquasecurity/trivy, google/osv-scalibr test data). Scan never fails on
// content; a package has valid fields.
func FuzzParseGemspec(f *testing.F) {
	fixtures.Seed(f, "ruby", "*.gemspec")
	f.Add([]byte("Gem::Specification.new do |s|\n s.name = %q<a>\n s.version = \"\\u{41}\\x41\"\n"))
	l := scannertest.Lang{Scanner: Scanner{}, Path: "usr/local/bundle/specifications/x-1.gemspec", PURLPrefix: "pkg:gem/", One: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		scannertest.CheckLangContent(t, l, data)
	})
}
