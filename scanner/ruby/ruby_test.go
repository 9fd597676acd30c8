package ruby

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
	if got := (Scanner{}).Info(); got != (scanner.Info{Name: "ruby", Version: "1", Kind: scanner.KindPackage}) {
		t.Errorf("Info() = %+v", got)
	}
	for p, want := range map[string]bool{
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
	} {
		if got := (Scanner{}).Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestFixtures scans the corpus's installed-gem specifications (anchore/syft,
// aquasecurity/trivy and google/osv-scalibr test data; names and versions
// from testdata/fixtures/SOURCES.md).
func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		fixture, path, name, version string
	}{
		{"ruby/syft_bundler.gemspec", "usr/lib/ruby/gems/2.7.0/specifications/default/bundler-2.1.4.gemspec", "bundler", "2.1.4"},
		{"ruby/syft_formatador.gemspec", "usr/local/bundle/specifications/formatador-1.1.0.gemspec", "formatador", "1.1.0"},
		{"ruby/trivy_normal00.gemspec", "usr/local/bundle/specifications/rake-13.0.3.gemspec", "rake", "13.0.3"},
		{"ruby/trivy_multiple_licenses.gemspec", "usr/local/bundle/specifications/test-unit-3.3.7.gemspec", "test-unit", "3.3.7"},
		{"ruby/scalibr_rss-0.2.9.gemspec", "usr/local/bundle/specifications/rss-0.2.9.gemspec", "rss", "0.2.9"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.FromDisk(t, tc.path, fixtures.Path(t, tc.fixture))})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) != 0 || len(res.Packages) != 1 {
				t.Fatalf("%d packages, warnings %q", len(res.Packages), res.Warnings)
			}
			want := report.Package{Name: tc.name, Version: tc.version, Kind: report.KindBinary,
				PURL: "pkg:gem/" + tc.name + "@" + tc.version, PackageDB: tc.path, Filepath: tc.path}
			if got := *res.Packages[0]; got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
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
	for _, tc := range []struct {
		name, data, warn string
	}{
		{"empty", "", "name: empty"},
		{"no version", head + "  s.name = \"x\"\n", "version: empty"},
		{"interpolation", head + "  s.name = \"x#{1}\"\n  s.version = \"1\"\n", "interpolation"},
		{"not a literal", head + "  s.name = compute_name\n  s.version = \"1\"\n", "not a string literal"},
		{"unterminated", head + "  s.name = \"x\n  s.version = \"1\"\n", "unterminated"},
		{"invalid UTF-8", head + "  s.name = \"caf\xe9\"\n  s.version = \"1\"\n", "not valid UTF-8"},
		{"escaped invalid UTF-8", head + "  s.name = \"caf\\xe9\"\n  s.version = \"1\"\n", "not valid UTF-8"},
		{"control character", head + "  s.name = \"a\\nb\"\n  s.version = \"1\"\n", "blanks or control"},
		{"bad unicode escape", head + "  s.name = \"\\uZZZZ\"\n  s.version = \"1\"\n", `invalid \u escape`},
		{"binary", "\x00\x01\x02\xff", "name: empty"},
		{"long line", head + "  s.summary = \"" + strings.Repeat("x", maxLine) + "\"\n", "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := scannertest.File("g/specifications/bad-1.gemspec", []byte(tc.data))
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{bad, good})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != 1 || res.Packages[0].Name != "good" {
				t.Errorf("packages %v", res.Packages)
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "g/specifications/bad-1.gemspec") || !strings.Contains(res.Warnings[0], tc.warn) {
				t.Errorf("warnings %q, want one naming the file and %q", res.Warnings, tc.warn)
			}
		})
	}
	// Too large, by size or by content.
	big := strings.Repeat("#\n", MaxFileSize)
	liar := scannertest.FileFunc("g/specifications/liar-1.gemspec", 10, func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(big)), nil
	})
	huge := scannertest.FileFunc("g/specifications/huge-1.gemspec", MaxFileSize+1, func() (io.ReadCloser, error) {
		t.Error("a file over the limit was opened")
		return nil, errors.New("opened")
	})
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{liar, huge})
	if err != nil || len(res.Warnings) != 2 {
		t.Errorf("too large: warnings %q, err %v", res.Warnings, err)
	}
	// A platform other than ruby is a PURL qualifier.
	res, err = Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("g/specifications/n.gemspec",
		[]byte(head+"  s.name = \"nokogiri\".freeze\n  s.version = \"1.13.0\"\n  s.platform = \"x86_64-linux\".freeze\n"))})
	if err != nil || len(res.Packages) != 1 || res.Packages[0].PURL != "pkg:gem/nokogiri@1.13.0?platform=x86_64-linux" {
		t.Errorf("platform: %v, %v", res.Packages, err)
	}
	broken := scannertest.FileFunc("g/specifications/broken.gemspec", 10, func() (io.ReadCloser, error) { return nil, os.ErrPermission })
	if _, err := (Scanner{}).Scan(context.Background(), []scanner.File{broken}); !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "broken.gemspec") {
		t.Errorf("open error: %v", err)
	}
}

// FuzzParseGemspec is seeded with the corpus's gemspecs (anchore/syft,
// aquasecurity/trivy, google/osv-scalibr test data). Scan never fails on
// content; a package has valid fields.
func FuzzParseGemspec(f *testing.F) {
	fixtures.Seed(f, "ruby", "*.gemspec")
	f.Add([]byte("Gem::Specification.new do |s|\n s.name = %q<a>\n s.version = \"\\u{41}\\x41\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "usr/local/bundle/specifications/x-1.gemspec"
		res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(path, data)})
		if err != nil {
			t.Fatalf("content error is not a warning: %v", err)
		}
		if len(res.Packages)+len(res.Warnings) != 1 {
			t.Fatalf("%d packages, %d warnings", len(res.Packages), len(res.Warnings))
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
			if !strings.HasPrefix(p.PURL, "pkg:gem/") || p.Filepath != path {
				t.Fatalf("package %+v", p)
			}
		}
	})
}
