package e2e_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
)

// Red Hat repositories end to end (registry -> API -> JetStream -> worker
// -> Postgres), from each of their three sources in an image: a content
// manifest, dnf's history, the build Dockerfile. Both mappings are imported
// ahead of time, as an air-gapped site does. Real files: claircore's RHEL
// release files, content manifest, Dockerfile layer and dnf4 history
// (quay/claircore, Apache-2.0), openshift-preflight's SQLite rpmdb
// (Apache-2.0: tzdata). See testdata/fixtures/SOURCES.md.
func TestRHELRepositories(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(2, true))
	loadRHELMappings(t, h)
	dockerfile := fixtures.TarMember(t, "layers/claircore_layer-with-cpe.tar", "root/buildinfo/Dockerfile-name-1-1")
	manifest := fixtures.TarMember(t, "layers/claircore_layer-with-embedded-cs.tar", "root/buildinfo/content_manifests/foo-1.1-2.json")

	tests := []struct {
		name  string
		files map[string][]byte
		// want lists "name key cpe" of the report's repositories; every
		// rpm package must link to all of them.
		want []string
	}{
		{
			name: "content manifest",
			files: map[string][]byte{
				"root/buildinfo/content_manifests/foo-1.1-2.json": manifest,
			},
			want: []string{
				"content-set-1 rhel-cpe-repository cpe:/o:redhat:enterprise_linux:8::baseos",
				"content-set-2 rhel-cpe-repository cpe:/a:redhat:enterprise_linux:8::appstream",
			},
		},
		{
			name: "dnf history",
			files: map[string][]byte{
				"var/lib/dnf/history.sqlite": fixture(t, "rpm/claircore_dnf4_history.sqlite"),
			},
			want: []string{
				"rhel-9-for-x86_64-appstream-rpms rhel-cpe-repository cpe:/a:redhat:enterprise_linux:9::appstream",
				"rhel-9-for-x86_64-baseos-rpms rhel-cpe-repository cpe:/o:redhat:enterprise_linux:9::baseos",
			},
		},
		{
			name: "build Dockerfile",
			files: map[string][]byte{
				"root/buildinfo/Dockerfile-name-1-1": dockerfile,
			},
			want: []string{"rhel-8-for-x86_64-baseos-rpms rhel-cpe-repository cpe:/o:redhat:enterprise_linux:8::baseos"},
		},
		{
			name: "a content manifest wins over the Dockerfile",
			files: map[string][]byte{
				"root/buildinfo/Dockerfile-name-1-1":              dockerfile,
				"root/buildinfo/content_manifests/foo-1.1-2.json": manifest,
			},
			want: []string{
				"content-set-1 rhel-cpe-repository cpe:/o:redhat:enterprise_linux:8::baseos",
				"content-set-2 rhel-cpe-repository cpe:/a:redhat:enterprise_linux:8::appstream",
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkRHELRepositories(t, h, string(rune('a'+i)), tt.files, tt.want) })
	}
}

// loadRHELMappings loads repository-to-cpe.json and
// container-name-repos-map.json in their shapes, for the fixtures.
func loadRHELMappings(t *testing.T, h *harness) {
	ctx := context.Background()
	es := enrich.NewStore(postgres.New(h.pool))
	// repository-to-cpe.json's shape, for the content sets and repoids of
	// the fixtures.
	if _, err := es.Load(ctx, enrich.RepositoryCPE, "file:///repository-to-cpe.json", "", "", []byte(`{"data": {
  "rhel-9-for-x86_64-baseos-rpms": {"cpes": ["cpe:/o:redhat:enterprise_linux:9::baseos"]},
  "rhel-9-for-x86_64-appstream-rpms": {"cpes": ["cpe:/a:redhat:enterprise_linux:9::appstream"]},
  "rhel-8-for-x86_64-baseos-rpms": {"cpes": ["cpe:/o:redhat:enterprise_linux:8::baseos"]},
  "content-set-1": {"cpes": ["cpe:/o:redhat:enterprise_linux:8::baseos"]},
  "content-set-2": {"cpes": ["cpe:/a:redhat:enterprise_linux:8::appstream"]}
}}`)); err != nil {
		t.Fatal(err)
	}
	// container-name-repos-map.json's shape, for the component the
	// Dockerfile fixture names ("${PREFIX}-pkg" with PREFIX=rh).
	if _, err := es.Load(ctx, enrich.ContainerRepositories, "file:///container-name-repos-map.json", "", "",
		[]byte(`{"data": {"rh-pkg": ["rhel-8-for-x86_64-baseos-rpms"]}}`)); err != nil {
		t.Fatal(err)
	}
}

// checkRHELRepositories indexes a RHEL base layer under a layer of files
// (pushed as rhel/repos:tag) and checks that the report's repositories
// are want, and that the base's tzdata links to each of them.
func checkRHELRepositories(t *testing.T, h *harness, tag string, files map[string][]byte, want []string) {
	// The repositories come in a layer above the packages', as in
	// an image built on a Red Hat base: the packages borrow them.
	base := map[string][]byte{
		"etc/os-release":           fixture(t, "osrelease/claircore_rhel-releasefiles-8_os-release"),
		"var/lib/rpm/rpmdb.sqlite": fixture(t, "rpm/preflight_sqlite_rpmdb.sqlite"),
	}
	m := h.push("rhel/repos:"+tag, base, files)
	r := h.indexAndWait(m)
	var got []string
	for _, id := range slices.Sorted(maps.Keys(r.Repositories)) {
		repo := r.Repositories[id]
		got = append(got, repo.Name+" "+repo.Key+" "+repo.CPE)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("repositories:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	tz := byName(r, "tzdata")
	if len(tz) != 1 {
		t.Fatalf("tzdata: %+v", tz)
	}
	envs := r.Environments[tz[0].ID]
	if len(envs) != 1 {
		t.Fatalf("tzdata environments %+v", envs)
	}
	var linked []string
	for _, id := range envs[0].RepositoryIDs {
		repo := r.Repositories[id]
		if repo == nil || repo.Key != rhel.ContentSetKey {
			t.Fatalf("tzdata links to %q: %+v", id, repo)
		}
		linked = append(linked, repo.Name+" "+repo.Key+" "+repo.CPE)
	}
	slices.Sort(linked)
	if !slices.Equal(linked, want) {
		t.Errorf("tzdata links to:\n  %s\nwant:\n  %s", strings.Join(linked, "\n  "), strings.Join(want, "\n  "))
	}
	if envs[0].IntroducedIn != m.Layers[0].Hash {
		t.Errorf("tzdata introduced in %s, want the base layer", envs[0].IntroducedIn)
	}
}
