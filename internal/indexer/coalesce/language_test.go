package coalesce

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
)

// TestLanguagePackages checks the claircore form of language packages: the
// version and normalized version claircore writes, one repository per
// ecosystem linked from their environments, no distribution, and an empty
// source; OS packages keep the distribution and their source.
func TestLanguagePackages(t *testing.T) {
	const (
		d1  = report.Digest("sha256:1111111111111111111111111111111111111111111111111111111111111111")
		d2  = report.Digest("sha256:2222222222222222222222222222222222222222222222222222222222222222")
		bin = "usr/local/bin/app"
	)
	deb := &report.Package{Name: "libc6", Version: "2.36-9", Kind: report.KindBinary, PackageDB: "var/lib/dpkg/status",
		Source: &report.Package{Name: "glibc", Version: "2.36-9", Kind: report.KindSource}, PURL: "pkg:deb/debian/libc6@2.36-9"}
	noSource := &report.Package{Name: "base-files", Version: "12.4", Kind: report.KindBinary, PackageDB: "var/lib/dpkg/status"}
	lang := func(name, version, file, purl string) *report.Package {
		return &report.Package{Name: name, Version: version, Kind: report.KindBinary, PackageDB: file, Filepath: file, PURL: purl}
	}
	stdlib := lang("stdlib", "go1.22.1", bin, "pkg:golang/stdlib@1.22.1")
	mod := lang("golang.org/x/net", "v0.17.0", bin, "pkg:golang/golang.org/x/net@v0.17.0")
	flask := lang("Flask", "2.0.0", "usr/lib/python3/site-packages/Flask-2.0.0.dist-info/METADATA", "pkg:pypi/flask@2.0.0")
	guava := lang("guava", "27.0-jre", "opt/app.jar", "pkg:maven/com.google.guava/guava@27.0-jre")
	r := Coalesce("sha256:0000000000000000000000000000000000000000000000000000000000000000", []Layer{
		{Digest: d1, Packages: []*report.Package{deb, noSource}, Distributions: []*report.Distribution{{DID: "debian", Name: "Debian GNU/Linux", VersionID: "12"}}},
		{Digest: d2, Packages: []*report.Package{stdlib, mod, flask, guava}},
	})
	if stdlib.Version != "go1.22.1" || stdlib.NormalizedVersion != "" {
		t.Errorf("Coalesce modified its input: %+v", stdlib)
	}
	checkLanguagePackages(t, r)
	// One repository per ecosystem present, numbered in ecosystem order.
	var got []string
	for _, id := range sortedKeys(r.Repositories) {
		got = append(got, id+"="+r.Repositories[id].Name+" "+r.Repositories[id].URI)
	}
	if w := []string{"1=go https://pkg.go.dev/", "2=maven https://repo1.maven.apache.org/maven2", "3=pypi https://pypi.org/simple"}; !slices.Equal(got, w) {
		t.Errorf("repositories %q, want %q", got, w)
	}
	// The empty source is on the wire: Clair's matcher reads it.
	b, err := json.Marshal(r.Packages[idOf(r, "guava")])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["source"]) != `{"id":"","name":"","version":""}` {
		t.Errorf("guava's source on the wire is %s", m["source"])
	}
}

// checkLanguagePackages checks the version, normalized version, source,
// distribution and repository of each package of r.
func checkLanguagePackages(t *testing.T, r *report.Report) {
	t.Helper()
	type want struct {
		version, normalized, repo string // repo: the repository name, "" for none
		dist                      bool
		source                    string
	}
	wants := map[string]want{
		"libc6":            {"2.36-9", "", "", true, "glibc"},
		"base-files":       {"12.4", "", "", true, ""},
		"stdlib":           {"1.22.1", "semver:0.1.22.1.0.0.0.0.0.0", "go", false, ""},
		"golang.org/x/net": {"v0.17.0", "semver:0.0.17.0.0.0.0.0.0.0", "go", false, ""},
		"flask":            {"2.0.0", "pep440:0.2.0.0.0.0.0.0.0.0", "pypi", false, ""},
		"guava":            {"27.0-jre", "", "maven", false, ""},
	}
	seen := 0
	for id, p := range r.Packages {
		w, ok := wants[p.Name]
		if !ok {
			continue // the source package glibc
		}
		seen++
		if p.Version != w.version || p.NormalizedVersion != w.normalized {
			t.Errorf("%s: version %q normalized %q, want %q %q", p.Name, p.Version, p.NormalizedVersion, w.version, w.normalized)
		}
		if p.Source == nil || p.Source.Name != w.source {
			t.Errorf("%s: source %+v, want one named %q", p.Name, p.Source, w.source)
		}
		envs := r.Environments[id]
		if len(envs) != 1 {
			t.Fatalf("%s: %d environments, want 1", p.Name, len(envs))
		}
		env := envs[0]
		if got := env.DistributionID != ""; got != w.dist {
			t.Errorf("%s: distribution_id %q, want one: %v", p.Name, env.DistributionID, w.dist)
		}
		var repos []string
		for _, rid := range env.RepositoryIDs {
			repos = append(repos, r.Repositories[rid].Name)
		}
		if w.repo == "" && len(repos) != 0 || w.repo != "" && !slices.Equal(repos, []string{w.repo}) {
			t.Errorf("%s: repositories %v, want %q", p.Name, repos, w.repo)
		}
	}
	if seen != len(wants) {
		t.Errorf("found %d of the %d packages: %v", seen, len(wants), r.Packages)
	}
}

// TestLanguagePackagesNoEcosystem checks that a report without language
// packages gets no ecosystem repository.
func TestLanguagePackagesNoEcosystem(t *testing.T) {
	r := Coalesce("sha256:0000000000000000000000000000000000000000000000000000000000000000", []Layer{{
		Digest:   "sha256:1111111111111111111111111111111111111111111111111111111111111111",
		Packages: []*report.Package{{Name: "musl", Version: "1.2.4-r2", Kind: report.KindBinary, PackageDB: "lib/apk/db/installed"}},
	}})
	if len(r.Repositories) != 0 {
		t.Errorf("repositories %v, want none", r.Repositories)
	}
}

func idOf(r *report.Report, name string) string {
	for id, p := range r.Packages {
		if p.Name == name {
			return id
		}
	}
	return ""
}
