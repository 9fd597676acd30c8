package affected_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/stevedore-dev/stevedore/internal/affected"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// jacksonJar is a jar holding the real Maven metadata of jackson-databind
// 2.9.10.8 from the corpus (claircore's test data), as Maven packs it.
func jacksonJar(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, fx := range map[string]string{
		"META-INF/MANIFEST.MF": "java/claircore_manifest_jackson-databind-2.9.10.8.MF",
		"META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties": "java/claircore_properties_jackson-databind-2.9.10.8.pom.properties",
	} {
		b, err := os.ReadFile(fixtures.Path(t, fx))
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// images are the indexed images of the tests, made of real package
// databases of the corpus.
func images(t testing.TB) map[string]image {
	return map[string]image{
		"debian": {files: map[string]string{
			"etc/os-release":      "osrelease/claircore_debian-12_os-release",
			"var/lib/dpkg/status": "dpkg/syft_status.d_coreutils-relationships",
		}},
		"ubuntu": {files: map[string]string{
			"etc/os-release":      "osrelease/claircore_ubuntu-18.04_os-release",
			"var/lib/dpkg/status": "dpkg/trivy_valid.status",
		}},
		"alpine": {files: map[string]string{
			"etc/os-release":       "osrelease/claircore_alpine-3.10_os-release",
			"lib/apk/db/installed": "apk/trivy_alpine-310_installed",
		}},
		"python": {files: map[string]string{
			"usr/lib/python3.9/site-packages/Flask-2.0.0.dist-info/METADATA":       "python/trivy_Flask-2.0.0.dist-info_METADATA",
			"usr/lib/python3.9/site-packages/setuptools-51.3.3.dist-info/METADATA": "python/trivy_setuptools-51.3.3.dist-info_METADATA",
		}},
		"java": {built: map[string][]byte{"app/lib/jackson-databind-2.9.10.8.jar": jacksonJar(t)}},
		"go": {
			files:      map[string]string{"usr/bin/app": "gobin/trivy_test.elf"},
			executable: map[string]bool{"usr/bin/app": true},
		},
		"npm": {files: map[string]string{"app/node_modules/express/package.json": "npm/trivy_happy_nm-express_package.json"}},
	}
}

func loadAdvisories(t testing.TB) []affected.Vulnerability {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "advisories.json"))
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		Vulnerabilities []affected.Vulnerability `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	return req.Vulnerabilities
}

// validate checks an answer against Clair's schema, as it goes on the wire.
func validate(t testing.TB, s *jsonschema.Schema, raw []byte) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(doc); err != nil {
		t.Fatalf("answer does not validate against affected_manifests.schema.json: %v\n%s", err, raw)
	}
}

func TestAffectedOnRealAdvisories(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	manifests := storeAdvisoryImages(ctx, t, pool, st)

	vulns := loadAdvisories(t)
	ans, err := affected.New(st, nil).Affected(ctx, vulns)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(ans)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, fixtures.ClairSchema(t, "affected_manifests.schema.json"), raw)

	// Which manifests each advisory affects.
	got := map[string][]string{}
	names := map[report.Digest]string{digestOf("debian partial"): "debian-partial"}
	for n, d := range manifests {
		names[d] = n
	}
	for m, ids := range ans.VulnerableManifests {
		n, ok := names[report.Digest(m)]
		if !ok {
			t.Errorf("manifest %s (not finished, not partial, or deleted) is listed as affected by %v", m, ids)
			continue
		}
		for _, id := range ids {
			got[id] = append(got[id], n)
		}
	}
	for _, v := range vulns {
		if ans.Vulnerabilities[v.ID] == nil {
			t.Errorf("vulnerability %s missing from the answer's vulnerabilities", v.ID)
		}
		eco, kind, _ := strings.Cut(v.ID, "-")
		var want []string
		if kind == "match" || kind == "unfixed" {
			want = []string{eco}
			if eco == "debian" {
				want = append(want, "debian-partial")
			}
		}
		slices.Sort(got[v.ID])
		slices.Sort(want)
		if !slices.Equal(got[v.ID], want) {
			t.Errorf("%s (%s, %s %q): affects %v, want %v", v.ID, v.Name, v.Package.Name, v.FixedInVersion, got[v.ID], want)
		}
	}
	// Most severe first: the Debian image has a High and a Negligible.
	if ids := ans.VulnerableManifests[string(manifests["debian"])]; !slices.Equal(ids, []string{"debian-match", "debian-unfixed"}) {
		t.Errorf("debian manifest's vulnerabilities %v: want most severe first", ids)
	}
}

// storeAdvisoryImages stores the report of every test image, finished,
// and the reports of a Debian image that is partial (it counts), failed,
// in progress and deleted (they do not); it returns the finished images'
// manifests by name.
func storeAdvisoryImages(ctx context.Context, t *testing.T, pool *pgxpool.Pool, st *postgres.Store) map[string]report.Digest {
	t.Helper()
	manifests := map[string]report.Digest{}
	for name, img := range images(t) {
		d := digestOf(name)
		manifests[name] = d
		r := scanImage(t, d, img)
		if len(r.Packages) == 0 {
			t.Fatalf("image %s: no packages found", name)
		}
		storeReport(t, pool, st, r)
	}
	// Another Debian image whose report is partial: it counts.
	partial := scanImage(t, digestOf("debian partial"), images(t)["debian"])
	partial.State = report.StateIndexPartial
	partial.Partial = []report.PartialReason{{Scanner: "test", Reason: "enrichment data missing"}}
	storeReport(t, pool, st, partial)
	// Reports that do not count: failed, in progress, deleted.
	for _, c := range []struct {
		seed  string
		state report.State
	}{{"debian error", report.StateIndexError}, {"debian in progress", report.StateScanLayers}, {"debian deleted", report.StateIndexFinished}} {
		r := scanImage(t, digestOf(c.seed), images(t)["debian"])
		r.State = c.state
		storeReport(t, pool, st, r)
	}
	if found, err := st.DeleteManifest(ctx, digestOf("debian deleted")); err != nil || !found {
		t.Fatalf("delete: %v %v", found, err)
	}
	return manifests
}

func TestAffectedBounds(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	for _, seed := range []string{"a", "b", "c"} {
		storeReport(t, pool, st, scanImage(t, digestOf(seed), images(t)["alpine"]))
	}
	vulns := loadAdvisories(t)
	var musl []affected.Vulnerability
	for _, v := range vulns {
		if v.ID == "alpine-match" {
			musl = append(musl, v)
		}
	}
	for _, c := range []struct {
		name     string
		vulns    []affected.Vulnerability
		maxVulns int
		maxRows  int
		want     error
	}{
		{"too many vulnerabilities", vulns, len(vulns) - 1, affected.DefaultMaxRows, affected.ErrTooMany},
		// musl and musl-utils (source musl) in each of 3 images.
		{"too many candidate rows", musl, 10, 5, affected.ErrTooMany},
		{"rows at the bound", musl, 10, 6, nil},
		{"no id", []affected.Vulnerability{{Name: "CVE-0"}}, 10, 10, affected.ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := affected.New(st, nil)
			f.MaxVulnerabilities, f.MaxRows = c.maxVulns, c.maxRows
			ans, err := f.Affected(ctx, c.vulns)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if c.want == nil && len(ans.VulnerableManifests) != 3 {
				t.Fatalf("%d manifests affected, want 3", len(ans.VulnerableManifests))
			}
		})
	}
}
