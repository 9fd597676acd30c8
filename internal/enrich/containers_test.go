package enrich_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
)

// The shape of Red Hat's container-name-repos-map.json.
const containerMap = `{"data": {
  "ubi8-container": ["rhel-8-for-x86_64-baseos-rpms", "rhel-8-for-x86_64-appstream-rpms"],
  "ubi8-minimal-container": ["rhel-8-for-x86_64-baseos-rpms", "rhel-8-for-x86_64-baseos-rpms"],
  "rhel-server-container": ["rhel-7-server-rpms"],
  "empty-container": []
}}`

// containerReport returns a report with repos and, for each package named
// in links, one Environment pointing at the repository ids.
func containerReport(repos []*report.Repository, links map[string][]string) *report.Report {
	r := report.NewReport(report.Digest("sha256:"+strings.Repeat("c", 64)), report.StateIndexFinished)
	for _, repo := range repos {
		r.Repositories[repo.ID] = repo
	}
	for p, ids := range links {
		r.Packages[p] = &report.Package{ID: p, Name: p}
		r.Environments[p] = []*report.Environment{{RepositoryIDs: ids}}
	}
	return r
}

// repoLines lists r's repositories as "id name key cpe", by id.
func repoLines(r *report.Report) []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(r.Repositories)) {
		repo := r.Repositories[id]
		if repo.ID != id {
			out = append(out, "id mismatch: "+id+" holds "+repo.ID)
		}
		out = append(out, strings.TrimSpace(id+" "+repo.Name+" "+repo.Key+" "+repo.CPE))
	}
	return out
}

// linksOf returns the repository ids of each package's Environments.
func linksOf(r *report.Report) map[string][]string {
	out := map[string][]string{}
	for p, envs := range r.Environments {
		for _, env := range envs {
			out[p] = append(out[p], env.RepositoryIDs...)
		}
	}
	return out
}

// containerName is a container-name repository.
func containerName(id, n string) *report.Repository {
	return &report.Repository{ID: id, Name: n, Key: rhel.ContainerNameKey}
}

// containerNameCase is a case of TestContainerNames.
type containerNameCase struct {
	name string
	// load is the mapping loaded first ("": none); age, when set,
	// makes it that old.
	load      string
	age       time.Duration
	repos     []*report.Repository
	links     map[string][]string
	wantRepos []string
	wantLinks map[string][]string
	gap       string
}

// containerNameCases are the cases of TestContainerNames.
var containerNameCases = []containerNameCase{
	{
		name:      "no container names: nothing needed",
		repos:     []*report.Repository{{ID: "1", Name: "main", URI: "https://deb.debian.org"}},
		links:     map[string][]string{"bash": {"1"}},
		wantRepos: []string{"1 main"},
		wantLinks: map[string][]string{"bash": {"1"}},
	},
	{
		name:      "mapping not loaded: a gap, the report as it was",
		repos:     []*report.Repository{containerName("1", "ubi8-container")},
		links:     map[string][]string{"bash": {"1"}},
		wantRepos: []string{"1 ubi8-container rhel-container-name"},
		wantLinks: map[string][]string{"bash": {"1"}},
		gap:       "the container-name-to-repositories mapping is not loaded: configure its URL or import it (stevedore enrichment import rhel-container-repositories FILE)",
	},
	{
		name: "loaded: names replaced by their content sets, links rewritten in place",
		load: containerMap,
		repos: []*report.Repository{
			{ID: "1", Name: "rhel-8-for-x86_64-baseos-rpms", Key: rhel.DNFRepoKey},
			containerName("2", "ubi8-container"),
			{ID: "3", Name: "local"},
		},
		links: map[string][]string{"bash": {"1", "2", "3"}, "curl": {"2"}, "vim": {"3"}},
		wantRepos: []string{
			"1 rhel-8-for-x86_64-baseos-rpms rhel-dnf-repoid",
			"2.1 rhel-8-for-x86_64-baseos-rpms rhel-cpe-repository",
			"2.2 rhel-8-for-x86_64-appstream-rpms rhel-cpe-repository",
			"3 local",
		},
		wantLinks: map[string][]string{"bash": {"1", "2.1", "2.2", "3"}, "curl": {"2.1", "2.2"}, "vim": {"3"}},
	},
	{
		name: "names sharing content sets share repositories; new ids avoid taken ones",
		load: containerMap,
		repos: []*report.Repository{
			containerName("1", "ubi8-minimal-container"),
			{ID: "1.1", Name: "taken"},
			containerName("2", "ubi8-container"),
		},
		links: map[string][]string{"bash": {"1", "2"}, "curl": {"2", "1"}, "vim": {"1.1"}},
		wantRepos: []string{
			"1.1 taken",
			"1.2 rhel-8-for-x86_64-baseos-rpms rhel-cpe-repository",
			"2.1 rhel-8-for-x86_64-appstream-rpms rhel-cpe-repository",
		},
		wantLinks: map[string][]string{"bash": {"1.2", "2.1"}, "curl": {"2.1", "1.2"}, "vim": {"1.1"}},
	},
	{
		name: "a name the mapping does not list is removed with its links",
		load: containerMap,
		repos: []*report.Repository{
			containerName("1", "my-own-container"),
			containerName("2", "rhel-server-container"),
			containerName("3", "empty-container"),
		},
		links:     map[string][]string{"bash": {"1", "2", "3"}, "curl": {"1"}},
		wantRepos: []string{"2.1 rhel-7-server-rpms rhel-cpe-repository"},
		wantLinks: map[string][]string{"bash": {"2.1"}, "curl": nil},
	},
	{
		name: "content sets already there: the names are dropped, no mapping needed",
		repos: []*report.Repository{
			{ID: "1", Name: "rhel-8-for-x86_64-baseos-rpms", Key: rhel.ContentSetKey},
			containerName("2", "ubi8-container"),
		},
		links:     map[string][]string{"bash": {"1", "2"}, "curl": {"2"}},
		wantRepos: []string{"1 rhel-8-for-x86_64-baseos-rpms rhel-cpe-repository"},
		wantLinks: map[string][]string{"bash": {"1"}, "curl": nil},
	},
	{
		name:      "stale: a gap saying how old, the report as it was",
		load:      containerMap,
		age:       2 * time.Hour,
		repos:     []*report.Repository{containerName("1", "ubi8-container")},
		links:     map[string][]string{"bash": {"1"}},
		wantRepos: []string{"1 ubi8-container rhel-container-name"},
		wantLinks: map[string][]string{"bash": {"1"}},
		gap:       "older than the allowed 1h0m0s",
	},
}

func TestContainerNames(t *testing.T) {
	tests := containerNameCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			pool := pgtest.Pool(t)
			es := enrich.NewStore(postgres.New(pool))
			if tt.load != "" {
				if _, err := es.Load(ctx, enrich.ContainerRepositories, "file:///container-name-repos-map.json", "", "", []byte(tt.load)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.age > 0 {
				if _, err := pool.Exec(ctx, `UPDATE enrichment SET loaded_at = now() - $1 * interval '1 second'`, int(tt.age.Seconds())); err != nil {
					t.Fatal(err)
				}
			}
			e := &enrich.ContainerNames{Store: es, MaxAge: time.Hour}
			r := containerReport(tt.repos, tt.links)
			gaps, err := e.Enrich(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.gap == "" && len(gaps) != 0:
				t.Errorf("gaps %+v", gaps)
			case tt.gap != "" && (len(gaps) != 1 || gaps[0].Data != enrich.ContainerRepositories || !strings.Contains(gaps[0].Reason, tt.gap)):
				t.Errorf("gaps %+v, want one for %s with %q", gaps, enrich.ContainerRepositories, tt.gap)
			}
			if got := repoLines(r); !slices.Equal(got, tt.wantRepos) {
				t.Errorf("repositories:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.wantRepos, "\n  "))
			}
			got := linksOf(r)
			for p, want := range tt.wantLinks {
				if !slices.Equal(got[p], want) {
					t.Errorf("%s links %q, want %q", p, got[p], want)
				}
			}
		})
	}
}

// A mapping that can no longer be read is a gap; a new mapping (another
// digest) is parsed again, not served from the cache.
func TestContainerNamesReload(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	es := enrich.NewStore(postgres.New(pool))
	e := &enrich.ContainerNames{Store: es}
	enrichNow := func() ([]string, []enrich.Gap) {
		t.Helper()
		r := containerReport([]*report.Repository{{ID: "1", Name: "ubi8-container", Key: rhel.ContainerNameKey}}, nil)
		gaps, err := e.Enrich(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return repoLines(r), gaps
	}
	if _, err := es.Load(ctx, enrich.ContainerRepositories, "file:///a.json", "", "", []byte(containerMap)); err != nil {
		t.Fatal(err)
	}
	if got, gaps := enrichNow(); len(got) != 2 || len(gaps) != 0 {
		t.Fatalf("first mapping: %q %+v", got, gaps)
	}
	if _, err := es.Load(ctx, enrich.ContainerRepositories, "file:///b.json", "", "", []byte(`{"data":{"ubi8-container":["rhel-8-for-x86_64-appstream-rpms"]}}`)); err != nil {
		t.Fatal(err)
	}
	if got, gaps := enrichNow(); !slices.Equal(got, []string{"1.1 rhel-8-for-x86_64-appstream-rpms rhel-cpe-repository"}) || len(gaps) != 0 {
		t.Fatalf("second mapping: %q %+v", got, gaps)
	}
	// Data that passed validation once but is not the shape any more
	// (written by hand, or by an older release): a gap, not a failure.
	if _, err := pool.Exec(ctx, `UPDATE enrichment SET data = '{"data": {"ubi8-container": "not a list"}}'::jsonb, digest = 'sha256:edited'`); err != nil {
		t.Fatal(err)
	}
	if got, gaps := enrichNow(); len(gaps) != 1 || !strings.Contains(gaps[0].Reason, "the loaded container-name-to-repositories mapping is unusable") || len(got) != 1 {
		t.Fatalf("unusable mapping: %q %+v", got, gaps)
	}
}

// In the order a node runs them, the content sets found through the
// container name get their CPEs in the same run.
func TestContainerNamesThenRepositoryCPEs(t *testing.T) {
	ctx := context.Background()
	es := enrich.NewStore(postgres.New(pgtest.Pool(t)))
	for kind, raw := range map[string]string{
		enrich.ContainerRepositories: containerMap,
		enrich.RepositoryCPE: `{"data": {
  "rhel-8-for-x86_64-baseos-rpms": {"cpes": ["cpe:/o:redhat:enterprise_linux:8::baseos"]},
  "rhel-8-for-x86_64-appstream-rpms": {"cpes": ["cpe:/a:redhat:enterprise_linux:8::appstream", "cpe:/a:redhat:rhel:8.3::appstream"]}
}}`,
	} {
		if _, err := es.Load(ctx, kind, "file:///"+kind+".json", "", "", []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	r := containerReport([]*report.Repository{{ID: "1", Name: "ubi8-container", Key: rhel.ContainerNameKey}}, map[string][]string{"bash": {"1"}})
	for _, e := range []enrich.Enricher{
		&enrich.ContainerNames{Store: es, MaxAge: time.Hour},
		&enrich.RepositoryCPEs{Store: es, MaxAge: time.Hour},
	} {
		if gaps, err := e.Enrich(ctx, r); err != nil || len(gaps) != 0 {
			t.Fatalf("%s: %+v %v", e.Info().Name, gaps, err)
		}
	}
	want := []string{
		"1.1 rhel-8-for-x86_64-baseos-rpms rhel-cpe-repository cpe:/o:redhat:enterprise_linux:8::baseos",
		"1.2 rhel-8-for-x86_64-appstream-rpms rhel-cpe-repository cpe:/a:redhat:enterprise_linux:8::appstream",
		"1.2.1 rhel-8-for-x86_64-appstream-rpms rhel-cpe-repository cpe:/a:redhat:rhel:8.3::appstream",
	}
	if got := repoLines(r); !slices.Equal(got, want) {
		t.Errorf("repositories:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got, want := linksOf(r)["bash"], []string{"1.1", "1.2", "1.2.1"}; !slices.Equal(got, want) {
		t.Errorf("bash links %q, want %q", got, want)
	}
}

func TestContainerNamesInfo(t *testing.T) {
	in := (&enrich.ContainerNames{}).Info()
	if in.Name != enrich.ContainerRepositories || in.Version != "1" || in.Kind != enrich.KindEnrichment {
		t.Errorf("Info() = %+v", in)
	}
}
