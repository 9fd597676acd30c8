package ecosystem

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
)

func TestOf(t *testing.T) {
	tests := []struct {
		name string
		p    *report.Package
		want Ecosystem
	}{
		{"go module", &report.Package{Filepath: "usr/bin/x", PURL: "pkg:golang/golang.org/x/net@v0.1.0"}, Go},
		{"go stdlib", &report.Package{Filepath: "usr/bin/x", PURL: "pkg:golang/stdlib@1.22.1"}, Go},
		{"maven", &report.Package{Filepath: "app.jar", PURL: "pkg:maven/com.google.guava/guava@27.0-jre"}, Maven},
		{"npm scoped", &report.Package{Filepath: "node_modules/@babel/parser/package.json", PURL: "pkg:npm/%40babel/parser@7.23.6"}, NPM},
		{"pypi", &report.Package{Filepath: "site-packages/Flask-2.0.0.dist-info/METADATA", PURL: "pkg:pypi/flask@2.0.0"}, PyPI},
		{"gem", &report.Package{Filepath: "specifications/rss-0.2.9.gemspec", PURL: "pkg:gem/rss@0.2.9"}, Gem},
		{"upper-case type", &report.Package{Filepath: "x", PURL: "pkg:NPM/ms@2.1.3"}, NPM},
		{"dpkg package", &report.Package{PackageDB: "var/lib/dpkg/status", PURL: "pkg:deb/debian/libc6@2.36-9"}, None},
		{"purl of a language type but no file", &report.Package{PURL: "pkg:npm/ms@2.1.3"}, None},
		{"file without purl", &report.Package{Filepath: "x"}, None},
		{"unknown type", &report.Package{Filepath: "x", PURL: "pkg:cargo/serde@1.0.0"}, None},
		// Ecosystems Stevedore reads that claircore has no matcher for.
		{"nuget", &report.Package{Filepath: "app/A.deps.json", PURL: "pkg:nuget/Newtonsoft.Json@13.0.1"}, None},
		{"composer", &report.Package{Filepath: "vendor/composer/installed.json", PURL: "pkg:composer/psr/log@1.1.4"}, None},
		{"conda", &report.Package{Filepath: "opt/conda/conda-meta/pip-22.2.2-py38h06a4308_0.json", PURL: "pkg:conda/pip@22.2.2?build=py38h06a4308_0"}, None},
		{"not a purl", &report.Package{Filepath: "x", PURL: "npm/ms"}, None},
		{"purl without slash", &report.Package{Filepath: "x", PURL: "pkg:npm"}, None},
		{"nil", nil, None},
	}
	for _, tt := range tests {
		if got := Of(tt.p); got != tt.want {
			t.Errorf("%s: Of = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRepository(t *testing.T) {
	// The values Clair's matchers select on (claircore v1.5.54): gobin
	// the URI, java, nodejs and ruby the name.
	want := map[Ecosystem][2]string{
		Go:    {"go", "https://pkg.go.dev/"},
		Maven: {"maven", "https://repo1.maven.apache.org/maven2"},
		NPM:   {"npm", "https://www.npmjs.com/"},
		PyPI:  {"pypi", "https://pypi.org/simple"},
		Gem:   {"rubygems", "https://rubygems.org/gems/"},
	}
	for _, e := range All() {
		r := e.Repository()
		if r == nil || r.Name != want[e][0] || r.URI != want[e][1] || r.ID != "" || r.Key != "" || r.CPE != "" {
			t.Errorf("%s: Repository = %+v, want name %q uri %q", e, r, want[e][0], want[e][1])
		}
	}
	if len(All()) != len(want) {
		t.Errorf("All() = %v, want the %d ecosystems", All(), len(want))
	}
	if r := None.Repository(); r != nil {
		t.Errorf("None.Repository() = %+v, want nil", r)
	}
	a := Go.Repository()
	a.Name = "changed"
	if Go.Repository().Name != "go" {
		t.Error("Repository returns shared state")
	}
}

func TestName(t *testing.T) {
	tests := []struct {
		e          Ecosystem
		name, want string
	}{
		{PyPI, "Flask", "flask"},
		{PyPI, "typing_extensions", "typing_extensions"},
		{PyPI, "pyOpenSSL", "pyopenssl"},
		{NPM, "JSONStream", "JSONStream"},
		{Maven, "com.google.guava:guava", "com.google.guava:guava"},
		{Go, "github.com/BurntSushi/toml", "github.com/BurntSushi/toml"},
	}
	for _, tt := range tests {
		if got := tt.e.Name(tt.name); got != tt.want {
			t.Errorf("%s.Name(%q) = %q, want %q", tt.e, tt.name, got, tt.want)
		}
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		e             Ecosystem
		name, v, want string
	}{
		{Go, "stdlib", "go1.22.1", "1.22.1"},
		{Go, "stdlib", "go1.20.12 X:strictfipsruntime", "1.20.12"},
		{Go, "stdlib", "1.22.1", "1.22.1"},
		{Go, "golang.org/x/net", "v0.17.0", "v0.17.0"},
		{NPM, "stdlib", "go1.22.1", "go1.22.1"},
		{PyPI, "flask", "2.0.0", "2.0.0"},
	}
	for _, tt := range tests {
		if got := tt.e.Version(tt.name, tt.v); got != tt.want {
			t.Errorf("%s.Version(%q, %q) = %q, want %q", tt.e, tt.name, tt.v, got, tt.want)
		}
	}
}

// The expected values follow claircore's rules by hand; compat/claircore
// checks the same function against claircore's own code.
func TestNormalizedVersion(t *testing.T) {
	tests := []struct {
		e    Ecosystem
		v    string
		want string
	}{
		// gobin.ParseVersion
		{Go, "1.22.1", "semver:0.1.22.1.0.0.0.0.0.0"},
		{Go, "v0.17.0", "semver:0.0.17.0.0.0.0.0.0.0"},
		{Go, "v0.0.0-20230321023759-10a507213a29", "semver:0.0.0.0.0.0.0.0.0.0"},
		{Go, "v2.1.0+incompatible", "semver:0.2.1.0.0.0.0.0.0.0"},
		{Go, "1.21", "semver:0.1.21.0.0.0.0.0.0.0"},
		{Go, "v1.2.1234567890", "semver:0.1.2.123456789.0.0.0.0.0.0"}, // cut to nine digits
		{Go, "1.21rc2", ""},
		{Go, "(devel)", ""},
		{Go, "", ""},
		// Masterminds/semver v1 + FromSemver
		{NPM, "4.17.21", "semver:0.4.17.21.0.0.0.0.0.0"},
		{NPM, "7.0.0-beta.44", "semver:0.7.0.0.0.0.0.0.0.0"},
		{NPM, "v1", "semver:0.1.0.0.0.0.0.0.0.0"},
		{NPM, "4294967297.0.0", "semver:0.1.0.0.0.0.0.0.0.0"}, // int64, then the low 32 bits
		{NPM, "99999999999999999999.0.0", ""},                 // overflows int64
		{NPM, "latest", ""},
		{NPM, "1.2.3.4", ""},
		// pep440.Parse + Version
		{PyPI, "2.0.0", "pep440:0.2.0.0.0.0.0.0.0.0"},
		{PyPI, "1!2.0", "pep440:1.2.0.0.0.0.0.0.0.0"},
		{PyPI, "1.2.3.4.5.6", "pep440:0.1.2.3.4.5.0.0.0.0"},
		{PyPI, "1.0a1", "pep440:0.1.0.0.0.0.-3.1.0.0"},
		{PyPI, "1.0b2", "pep440:0.1.0.0.0.0.-2.2.0.0"},
		{PyPI, "1.0rc3", "pep440:0.1.0.0.0.0.-1.3.0.0"},
		{PyPI, "1.0c3", "pep440:0.1.0.0.0.0.-1.3.0.0"},
		{PyPI, "1.0.post2", "pep440:0.1.0.0.0.0.0.0.2.0"},
		{PyPI, "1.0-3", "pep440:0.1.0.0.0.0.0.0.3.0"},
		{PyPI, "1.0.dev4", "pep440:0.1.0.0.0.0.-2147483644.0.0.0"},
		{PyPI, "1.0a1.dev4", "pep440:0.1.0.0.0.0.-3.1.0.-4"},
		{PyPI, "1.0.post1.dev4", "pep440:0.1.0.0.0.0.0.0.1.-4"},
		{PyPI, "1.0+local.7", "pep440:0.1.0.0.0.0.0.0.0.0"},
		{PyPI, "v3.1", "pep440:0.3.1.0.0.0.0.0.0.0"},
		{PyPI, "release-2.7", "pep440:0.2.7.0.0.0.0.0.0.0"}, // claircore's pattern is not anchored
		{PyPI, "unknown", ""},
		{PyPI, "", ""},
		{PyPI, "99999999999999999999", ""},
		// no normalized version
		{Maven, "2.9.10.8", ""},
		{Gem, "0.2.9", ""},
		{None, "1.0.0", ""},
		// bounded
		{NPM, strings.Repeat("1", maxVersionLen+1), ""},
	}
	for _, tt := range tests {
		if got := tt.e.NormalizedVersion(tt.v); got != tt.want {
			t.Errorf("%s.NormalizedVersion(%q) = %q, want %q", tt.e, tt.v, got, tt.want)
		}
	}
}

var wireForm = regexp.MustCompile(`^(semver|pep440):-?[0-9]+(\.-?[0-9]+){9}$`)

func FuzzNormalizedVersion(f *testing.F) {
	for _, s := range []string{"1.22.1", "v0.0.0-20230321023759-10a507213a29", "1!2.0a1.post3.dev4+x", "7.0.0-beta.44", "", "(devel)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, e := range []Ecosystem{Go, NPM, PyPI, Maven, Gem, None} {
			got := e.NormalizedVersion(s)
			if got != "" && !wireForm.MatchString(got) {
				t.Fatalf("%s.NormalizedVersion(%q) = %q: not claircore's wire form", e, s, got)
			}
			if got != "" && (e == Maven || e == Gem || e == None) {
				t.Fatalf("%s.NormalizedVersion(%q) = %q, want none", e, s, got)
			}
		}
	})
}
