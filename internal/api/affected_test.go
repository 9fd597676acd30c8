package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

const affectedPath = "/indexer/api/v1/internal/affected_manifest/"

// alpineReport is an Alpine 3.10 report with musl 1.1.22-r3 (as Stevedore
// reads trivy's alpine:3.10 database of the corpus).
func alpineReport(d report.Digest) *report.Report {
	r := report.NewReport(d, report.StateIndexFinished)
	r.Success = true
	r.Distributions["1"] = &report.Distribution{ID: "1", DID: "alpine", Name: "Alpine Linux", VersionID: "3.10.9", PrettyName: "Alpine Linux v3.10"}
	r.Packages["1"] = &report.Package{ID: "1", Name: "musl", Version: "1.1.22-r3", Kind: report.KindBinary, Arch: "x86_64",
		Source: &report.Package{Name: "musl", Version: "1.1.22-r3", Kind: report.KindSource}, PURL: "pkg:apk/alpine/musl@1.1.22-r3?arch=x86_64"}
	r.Environments["1"] = []*report.Environment{{PackageDB: "lib/apk/db/installed", IntroducedIn: d, DistributionID: "1"}}
	return r
}

func musl(id, fixed string) string {
	return fmt.Sprintf(`{"id": %q, "updater": "alpine-main-v3.10-updater", "name": "CVE-2020-28928", "normalized_severity": "Unknown",
 "package": {"id": "", "name": "musl", "version": "", "kind": "binary"}, "arch_op": "equals",
 "distribution": {"id": "", "did": "alpine", "name": "Alpine Linux", "version_id": "3.10", "pretty_name": "Alpine Linux v3.10"},
 "fixed_in_version": %q, "Self": {}, "Aliases": null, "Invert": false}`, id, fixed)
}

func TestAffectedManifestsHTTP(t *testing.T) {
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	d := report.Digest("sha256:" + strings.Repeat("a", 64))
	finish(t, pool, alpineReport(d))
	srv := httptest.NewServer(api.New(nil, st, nil, nil))
	defer srv.Close()
	answers := fixtures.ClairSchema(t, "affected_manifests.schema.json")
	errs := fixtures.ClairSchema(t, "error.schema.json")

	var many strings.Builder
	many.WriteString(`{"vulnerabilities": [`)
	for i := range 5001 {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `{"id": "%d", "normalized_severity": "Low"}`, i)
	}
	many.WriteString(`]}`)

	good := `{"vulnerabilities": [` + musl("affects", "1.1.22-r4") + `, ` + musl("fixed", "1.1.22-r3") + `]}`
	for _, c := range []affectedCase{
		{"no Accept", "", "application/json", good, 200, "application/vnd.clair.affected_manifests.v1+json", []string{"affects"}},
		{"Accept json", "application/json", "application/json", good, 200, "application/json", []string{"affects"}},
		{"Accept by q", "application/json;q=0.5, application/vnd.clair.affected_manifests.v1+json", "", good, 200, "application/vnd.clair.affected_manifests.v1+json", []string{"affects"}},
		{"Accept any", "*/*", "application/json", good, 200, "application/vnd.clair.affected_manifests.v1+json", []string{"affects"}},
		{"inverted", "", "application/json", `{"vulnerabilities": [` + strings.Replace(musl("affects", "1.1.22-r4"), `"Invert": false`, `"Invert": true`, 1) + `]}`, 200, "application/vnd.clair.affected_manifests.v1+json", nil},
		{"nothing affected", "", "application/json", `{"vulnerabilities": [` + musl("fixed", "1.1.22-r3") + `]}`, 200, "application/vnd.clair.affected_manifests.v1+json", nil},
		{"empty list", "", "application/json", `{"vulnerabilities": []}`, 200, "application/vnd.clair.affected_manifests.v1+json", nil},
		{"Accept refused", "text/html", "application/json", good, 415, "application/json", nil},
		{"Accept malformed", "text/html;;;=", "application/json", good, 400, "application/json", nil},
		{"not JSON", "", "text/plain", good, 415, "application/json", nil},
		{"bad JSON", "", "application/json", `{"vulnerabilities": [`, 400, "application/json", nil},
		{"no list", "", "application/json", `{}`, 400, "application/json", nil},
		{"no id", "", "application/json", `{"vulnerabilities": [{"name": "CVE-1"}]}`, 400, "application/json", nil},
		{"bad severity", "", "application/json", `{"vulnerabilities": [{"id": "1", "normalized_severity": "Dire"}]}`, 400, "application/json", nil},
		{"too many", "", "application/json", many.String(), 413, "application/json", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkAffectedAnswer(t, srv.URL, d, c, answers, errs)
		})
	}
}

// affectedCase is a request of TestAffectedManifestsHTTP and the answer
// expected.
type affectedCase struct {
	name        string
	accept      string
	contentType string
	body        string
	status      int
	mediaType   string
	affected    []string
}

// checkAffectedAnswer posts c's request to the server at url and checks
// the answer: status, media type, valid against Clair's schemas (answers or
// errs), and the vulnerabilities that affect d.
func checkAffectedAnswer(t *testing.T, url string, d report.Digest, c affectedCase, answers, errs *jsonschema.Schema) {
	req, err := http.NewRequest(http.MethodPost, url+affectedPath, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.accept != "" {
		req.Header.Set("Accept", c.accept)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != c.status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body.Bytes())
	}
	if mt := resp.Header.Get("Content-Type"); mt != c.mediaType {
		t.Errorf("Content-Type %q, want %q", mt, c.mediaType)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body.Bytes()))
	if err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, body.Bytes())
	}
	if c.status != 200 {
		if err := errs.Validate(doc); err != nil {
			t.Errorf("error body fails error.schema.json: %v\n%s", err, body.Bytes())
		}
		return
	}
	if err := answers.Validate(doc); err != nil {
		t.Fatalf("answer fails affected_manifests.schema.json: %v\n%s", err, body.Bytes())
	}
	var ans struct {
		Vulnerabilities     map[string]json.RawMessage `json:"vulnerabilities"`
		VulnerableManifests map[string][]string        `json:"vulnerable_manifests"`
	}
	if err := json.Unmarshal(body.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	got := ans.VulnerableManifests[string(d)]
	if fmt.Sprint(got) != fmt.Sprint(c.affected) {
		t.Errorf("manifest affected by %v, want %v", got, c.affected)
	}
	if len(c.affected) == 0 && len(ans.VulnerableManifests) != 0 {
		t.Errorf("vulnerable manifests %v, want none", ans.VulnerableManifests)
	}
}
