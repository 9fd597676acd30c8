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
	for _, tt := range rhelLinkCases() {
		t.Run(tt.name, func(t *testing.T) {
			got := repositoryLinks(t, Coalesce(digest(99), tt.layers))
			if !slices.Equal(got, tt.want) {
				t.Errorf("links:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// rhelLinkCases are stacks of layers and, in want, the sorted
// "package -> repository names" lines of their coalesced report.
func rhelLinkCases() []coalesceCase {
	const dpkgdb = "var/lib/dpkg/status"
	baseos, appstream := contentSet("rhel-9-for-x86_64-baseos-rpms"), contentSet("rhel-9-for-x86_64-appstream-rpms")
	return []coalesceCase{
		{
			name: "packages link to the repositories of their layer",
			layers: numbered(
				Layer{Packages: []*report.Package{rhelRPM("bash", ""), rhelRPM("glibc", "")}, Repositories: []*report.Repository{baseos, appstream}},
			),
			want: []string{
				"bash -> rhel-9-for-x86_64-appstream-rpms,rhel-9-for-x86_64-baseos-rpms",
				"glibc -> rhel-9-for-x86_64-appstream-rpms,rhel-9-for-x86_64-baseos-rpms",
			},
		},
		{
			name: "a layer without repositories borrows from the nearest below",
			layers: numbered(
				Layer{Packages: []*report.Package{rhelRPM("bash", "")}, Repositories: []*report.Repository{baseos}},
				Layer{Packages: []*report.Package{rhelRPM("bash", ""), rhelRPM("httpd", "")}, Repositories: []*report.Repository{appstream}},
				Layer{Packages: []*report.Package{rhelRPM("bash", ""), rhelRPM("httpd", ""), rhelRPM("vim", "")}},
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
				Layer{Packages: []*report.Package{rhelRPM("bash", "")}},
				Layer{Repositories: []*report.Repository{baseos}},
			),
			want: []string{"bash -> rhel-9-for-x86_64-baseos-rpms"},
		},
		{
			name: "a dnf repoid hint picks its repository",
			layers: numbered(
				Layer{
					Packages:     []*report.Package{rhelRPM("bash", rhel.RepoidHint("baseos")), rhelRPM("httpd", rhel.RepoidHint("appstream")), rhelRPM("local", rhel.RepoidHint("@commandline")), rhelRPM("nohint", "")},
					Repositories: []*report.Repository{dnfRepo("baseos"), dnfRepo("appstream")},
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
					Packages:     []*report.Package{{Name: "libc6", Version: "2.36-9", Kind: report.KindBinary, PackageDB: dpkgdb}, rhelRPM("bash", "")},
					Repositories: []*report.Repository{{Name: "debian", URI: "http://deb.debian.org/debian"}},
				},
			),
			want: []string{"bash -> ", "libc6 -> "},
		},
		{
			name: "no layer has Red Hat repositories",
			layers: numbered(
				Layer{Packages: []*report.Package{rhelRPM("bash", "")}},
				Layer{Packages: []*report.Package{rhelRPM("bash", "")}},
			),
			want: []string{"bash -> "},
		},
	}
}

// rhelRPM is a package of the rpm database with a repository hint.
func rhelRPM(name, hint string) *report.Package {
	return &report.Package{Name: name, Version: "1-1.el9", Kind: report.KindBinary, Arch: "x86_64", PackageDB: "var/lib/rpm/rpmdb.sqlite", RepositoryHint: hint}
}

// contentSet is a Red Hat content set.
func contentSet(name string) *report.Repository {
	return &report.Repository{Name: name, Key: rhel.ContentSetKey}
}

// dnfRepo is a dnf repository.
func dnfRepo(name string) *report.Repository {
	return &report.Repository{Name: name, Key: rhel.DNFRepoKey}
}

// repositoryLinks lists, sorted, "package -> repository names" for every
// environment of every package of r.
func repositoryLinks(t *testing.T, r *report.Report) []string {
	t.Helper()
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
	return got
}
