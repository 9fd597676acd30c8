package coalesce

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
)

// Links from rpm packages to the Red Hat repositories of their layer. The
// packages and repositories are made up: the rule is pure logic (the
// scanners that produce them are tested on real databases).
func TestCoalesceRHELRepositoryLinks(t *testing.T) {
	const rpmdb, dpkgdb = "var/lib/rpm/rpmdb.sqlite", "var/lib/dpkg/status"
	rpm := func(name, hint string) *report.Package {
		return &report.Package{Name: name, Version: "1-1.el9", Kind: report.KindBinary, Arch: "x86_64", PackageDB: rpmdb, RepositoryHint: hint}
	}
	cs := func(name string) *report.Repository { return &report.Repository{Name: name, Key: rhel.ContentSetKey} }
	dnf := func(name string) *report.Repository { return &report.Repository{Name: name, Key: rhel.DNFRepoKey} }
	baseos, appstream := cs("rhel-9-for-x86_64-baseos-rpms"), cs("rhel-9-for-x86_64-appstream-rpms")
	tests := []struct {
		name   string
		layers []Layer
		// want: "package -> repository names" lines, sorted.
		want []string
	}{
		{
			name: "packages link to the repositories of their layer",
			layers: numbered(
				Layer{Packages: []*report.Package{rpm("bash", ""), rpm("glibc", "")}, Repositories: []*report.Repository{baseos, appstream}},
			),
			want: []string{
				"bash -> rhel-9-for-x86_64-appstream-rpms,rhel-9-for-x86_64-baseos-rpms",
				"glibc -> rhel-9-for-x86_64-appstream-rpms,rhel-9-for-x86_64-baseos-rpms",
			},
		},
		{
			name: "a layer without repositories borrows from the nearest below",
			layers: numbered(
				Layer{Packages: []*report.Package{rpm("bash", "")}, Repositories: []*report.Repository{baseos}},
				Layer{Packages: []*report.Package{rpm("bash", ""), rpm("httpd", "")}, Repositories: []*report.Repository{appstream}},
				Layer{Packages: []*report.Package{rpm("bash", ""), rpm("httpd", ""), rpm("vim", "")}},
			),
			want: []string{
				"bash -> rhel-9-for-x86_64-baseos-rpms",
				"httpd -> rhel-9-for-x86_64-appstream-rpms",
				"vim -> rhel-9-for-x86_64-appstream-rpms",
			},
		},
		{
			name: "with none below, from the nearest above",
			layers: numbered(
				Layer{Packages: []*report.Package{rpm("bash", "")}},
				Layer{Repositories: []*report.Repository{baseos}},
			),
			want: []string{"bash -> rhel-9-for-x86_64-baseos-rpms"},
		},
		{
			name: "a dnf repoid hint picks its repository",
			layers: numbered(
				Layer{
					Packages:     []*report.Package{rpm("bash", rhel.RepoidHint("baseos")), rpm("httpd", rhel.RepoidHint("appstream")), rpm("local", rhel.RepoidHint("@commandline")), rpm("nohint", "")},
					Repositories: []*report.Repository{dnf("baseos"), dnf("appstream")},
				},
			),
			want: []string{
				"bash -> baseos",
				"httpd -> appstream",
				"local -> appstream,baseos",
				"nohint -> appstream,baseos",
			},
		},
		{
			name: "other packages and other repositories are not linked",
			layers: numbered(
				Layer{
					Packages:     []*report.Package{{Name: "libc6", Version: "2.36-9", Kind: report.KindBinary, PackageDB: dpkgdb}, rpm("bash", "")},
					Repositories: []*report.Repository{{Name: "debian", URI: "http://deb.debian.org/debian"}},
				},
			),
			want: []string{"bash -> ", "libc6 -> "},
		},
		{
			name: "no layer has Red Hat repositories",
			layers: numbered(
				Layer{Packages: []*report.Package{rpm("bash", "")}},
				Layer{Packages: []*report.Package{rpm("bash", "")}},
			),
			want: []string{"bash -> "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Coalesce(digest(99), tt.layers)
			var got []string
			for id, p := range r.Packages {
				for _, env := range r.Environments[id] {
					var names []string
					for _, rid := range env.RepositoryIDs {
						repo, ok := r.Repositories[rid]
						if !ok {
							t.Fatalf("%s links to repository %q, which the report lacks", p.Name, rid)
						}
						names = append(names, repo.Name)
					}
					slices.Sort(names)
					got = append(got, fmt.Sprintf("%s -> %s", p.Name, strings.Join(names, ",")))
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("links:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}
