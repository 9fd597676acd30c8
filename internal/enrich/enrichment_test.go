package enrich_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
)

// The shape of Red Hat's repository-to-cpe.json.
const mapping = `{"data": {
  "rhel-8-for-x86_64-baseos-rpms": {"cpes": ["cpe:/o:redhat:enterprise_linux:8::baseos", "cpe:/o:redhat:rhel:8.3::baseos"]},
  "rhel-8-for-x86_64-appstream-rpms": {"cpes": ["cpe:/a:redhat:enterprise_linux:8::appstream"]}
}}`

func TestValidate(t *testing.T) {
	v := enrich.Kinds()[enrich.RepositoryCPE].Validate
	c := enrich.Kinds()[enrich.ContainerRepositories].Validate
	for _, tc := range []struct {
		name     string
		validate func([]byte) (int, error)
		in       string
		entries  int
		want     string
	}{
		{"good mapping", v, mapping, 2, ""},
		{"cpe 2.3", v, `{"data":{"r":{"cpes":["cpe:2.3:o:redhat:enterprise_linux:8:*:*:*:*:*:*:*"]}}}`, 1, ""},
		{"not json", v, `<html>502 Bad Gateway</html>`, 0, "not valid JSON at byte 1"},
		{"truncated", v, mapping[:60], 0, "not valid JSON"},
		{"malformed cpe", v, `{"data":{"r":{"cpes":["cpe:/o:redhat:bad name"]}}}`, 0, `"data"["r"].cpes[0]`},
		{"not a cpe", v, `{"data":{"r":{"cpes":["redhat"]}}}`, 0, "is not a CPE"},
		{"cpe that crashes the parser", v, `{"data":{"r":{"cpes":["cpe:/A%0:0000"]}}}`, 0, "not a well-formed CPE"},
		{"empty", v, `{"data":{}}`, 0, "no entries"},
		{"wrong shape", v, `{"data":["a"]}`, 0, "not the expected JSON"},
		{"invalid utf-8", v, "{\"data\":{\"\xff\":{}}}", 0, "UTF-8"},
		{"container map", c, `{"data":{"ubi8/ubi":["rhel-8-for-x86_64-baseos-rpms"]}}`, 1, ""},
		{"container map empty repo", c, `{"data":{"ubi8/ubi":[""]}}`, 0, "empty repository name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := tc.validate([]byte(tc.in))
			if tc.want == "" {
				if err != nil || n != tc.entries {
					t.Fatalf("got %d, %v; want %d entries", n, err, tc.entries)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestStoreKeepsGoodDataOnBadLoad(t *testing.T) {
	ctx := context.Background()
	es := enrich.NewStore(postgres.New(pgtest.Pool(t)))
	if _, err := es.Get(ctx, enrich.RepositoryCPE); !errors.Is(err, enrich.ErrNotLoaded) {
		t.Fatalf("before any load: %v", err)
	}
	d, err := es.Load(ctx, enrich.RepositoryCPE, "file:///m.json", "", "", []byte(mapping))
	if err != nil || d.Entries != 2 {
		t.Fatalf("load: %+v %v", d, err)
	}
	if _, err := es.Load(ctx, enrich.RepositoryCPE, "file:///bad.json", "", "", []byte(`{"data":`)); err == nil || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("bad load: %v", err)
	}
	got, err := es.Get(ctx, enrich.RepositoryCPE)
	if err != nil || got.Digest != d.Digest || got.Source != "file:///m.json" || !strings.Contains(got.LastError, "not valid JSON") {
		t.Fatalf("after a bad load: %+v %v", got, err)
	}
	if _, err := es.Load(ctx, "no-such-data", "x", "", "", []byte(mapping)); !errors.Is(err, enrich.ErrUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}
}

func TestUpdaterConditionalRequests(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	es := enrich.NewStore(postgres.New(pool))
	var requests, notModified atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, mapping)
	}))
	loads := 0
	u := &enrich.Updater{Store: es, Logger: slog.New(slog.DiscardHandler),
		OnLoad: func(context.Context, string) { loads++ }}
	src := enrich.Source{Name: enrich.RepositoryCPE, URL: srv.URL + "/repository-to-cpe.json"}
	if err := u.Update(ctx, src); err != nil {
		t.Fatal(err)
	}
	first, _ := es.Meta(ctx, enrich.RepositoryCPE)
	time.Sleep(10 * time.Millisecond)
	if err := u.Update(ctx, src); err != nil {
		t.Fatal(err)
	}
	second, _ := es.Meta(ctx, enrich.RepositoryCPE)
	if requests.Load() != 2 || notModified.Load() != 1 || loads != 2 {
		t.Fatalf("%d requests, %d not modified, %d loads", requests.Load(), notModified.Load(), loads)
	}
	if !second.LoadedAt.After(first.LoadedAt) || second.Digest != first.Digest {
		t.Fatalf("a 304 should confirm the data: %v then %v", first.LoadedAt, second.LoadedAt)
	}
	// The source goes away: the data stays, the error is recorded.
	srv.Close()
	if err := u.Update(ctx, src); err == nil {
		t.Fatal("no error from a closed source")
	}
	third, _ := es.Meta(ctx, enrich.RepositoryCPE)
	if third.Digest != first.Digest || third.LastError == "" || !third.LoadedAt.Equal(second.LoadedAt) {
		t.Fatalf("after a failed update: %+v", third)
	}
}

func testReport(repos ...*report.Repository) *report.Report {
	r := report.NewReport(report.Digest("sha256:"+strings.Repeat("a", 64)), report.StateIndexFinished)
	for _, repo := range repos {
		r.Repositories[repo.ID] = repo
	}
	r.Packages["p"] = &report.Package{ID: "p", Name: "bash"}
	r.Environments["p"] = []*report.Environment{{RepositoryIDs: []string{"1"}}}
	return r
}

func TestRepositoryCPEs(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	es := enrich.NewStore(postgres.New(pool))
	e := &enrich.RepositoryCPEs{Store: es, MaxAge: time.Hour}
	baseos := &report.Repository{ID: "1", Name: "rhel-8-for-x86_64-baseos-rpms", Key: enrich.RHELRepositoryKey}

	// No RHEL repositories: nothing needed.
	if gaps, err := e.Enrich(ctx, testReport(&report.Repository{ID: "1", Name: "main"})); err != nil || len(gaps) != 0 {
		t.Fatalf("no rhel repos: %v %v", gaps, err)
	}
	// Not loaded: a gap naming the data and how to load it.
	gaps, err := e.Enrich(ctx, testReport(baseos))
	if err != nil || len(gaps) != 1 || gaps[0].Data != enrich.RepositoryCPE || !strings.Contains(gaps[0].Reason, "not loaded") {
		t.Fatalf("not loaded: %+v %v", gaps, err)
	}
	if _, err := es.Load(ctx, enrich.RepositoryCPE, "file:///m.json", "", "", []byte(mapping)); err != nil {
		t.Fatal(err)
	}
	r := testReport(&report.Repository{ID: "1", Name: "rhel-8-for-x86_64-baseos-rpms", Key: enrich.RHELRepositoryKey},
		&report.Repository{ID: "2", Name: "unknown-repo", Key: enrich.RHELRepositoryKey})
	if gaps, err := e.Enrich(ctx, r); err != nil || len(gaps) != 0 {
		t.Fatalf("loaded: %v %v", gaps, err)
	}
	if r.Repositories["1"].CPE != "cpe:/o:redhat:enterprise_linux:8::baseos" || r.Repositories["1.1"].CPE != "cpe:/o:redhat:rhel:8.3::baseos" {
		t.Fatalf("cpes: %+v %+v", r.Repositories["1"], r.Repositories["1.1"])
	}
	if r.Repositories["2"].CPE != "" {
		t.Fatalf("a repository the mapping does not list got a CPE: %+v", r.Repositories["2"])
	}
	if got := r.Environments["p"][0].RepositoryIDs; len(got) != 2 || got[1] != "1.1" {
		t.Fatalf("environment repository ids %v", got)
	}
	// Stale: a gap saying how old.
	if _, err := pool.Exec(ctx, `UPDATE enrichment SET loaded_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	gaps, err = e.Enrich(ctx, testReport(baseos))
	if err != nil || len(gaps) != 1 || !strings.Contains(gaps[0].Reason, "older than the allowed 1h0m0s") {
		t.Fatalf("stale: %+v %v", gaps, err)
	}
}

// dnf repoids become content sets when the mapping lists them and are
// dropped, links and all, when it does not.
func TestRepositoryCPEsDNFRepoids(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	es := enrich.NewStore(postgres.New(pool))
	e := &enrich.RepositoryCPEs{Store: es, MaxAge: time.Hour}
	if _, err := es.Load(ctx, enrich.RepositoryCPE, "file:///m.json", "", "", []byte(mapping)); err != nil {
		t.Fatal(err)
	}
	r := report.NewReport(report.Digest("sha256:"+strings.Repeat("a", 64)), report.StateIndexFinished)
	for _, repo := range []*report.Repository{
		{ID: "1", Name: "rhel-8-for-x86_64-appstream-rpms", Key: rhel.ContentSetKey},
		{ID: "2", Name: "rhel-8-for-x86_64-appstream-rpms", Key: rhel.DNFRepoKey},
		{ID: "3", Name: "rhel-8-for-x86_64-baseos-rpms", Key: rhel.DNFRepoKey},
		{ID: "4", Name: "epel", Key: rhel.DNFRepoKey},
	} {
		r.Repositories[repo.ID] = repo
	}
	r.Packages["p"] = &report.Package{ID: "p", Name: "bash"}
	r.Environments["p"] = []*report.Environment{{RepositoryIDs: []string{"2", "3", "4"}}}
	r.Packages["q"] = &report.Package{ID: "q", Name: "httpd"}
	r.Environments["q"] = []*report.Environment{{RepositoryIDs: []string{"1", "2"}}}
	if gaps, err := e.Enrich(ctx, r); err != nil || len(gaps) != 0 {
		t.Fatalf("enrich: %v %v", gaps, err)
	}
	var got []string
	for _, id := range slices.Sorted(maps.Keys(r.Repositories)) {
		repo := r.Repositories[id]
		got = append(got, id+" "+repo.Name+" "+repo.Key+" "+repo.CPE)
	}
	want := []string{
		"1 rhel-8-for-x86_64-appstream-rpms rhel-cpe-repository cpe:/a:redhat:enterprise_linux:8::appstream",
		"3 rhel-8-for-x86_64-baseos-rpms rhel-cpe-repository cpe:/o:redhat:enterprise_linux:8::baseos",
		"3.1 rhel-8-for-x86_64-baseos-rpms rhel-cpe-repository cpe:/o:redhat:rhel:8.3::baseos",
	}
	if !slices.Equal(got, want) {
		t.Errorf("repositories:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got, want := r.Environments["p"][0].RepositoryIDs, []string{"1", "3", "3.1"}; !slices.Equal(got, want) {
		t.Errorf("bash links %v, want %v", got, want)
	}
	if got, want := r.Environments["q"][0].RepositoryIDs, []string{"1"}; !slices.Equal(got, want) {
		t.Errorf("httpd links %v, want %v", got, want)
	}
}
