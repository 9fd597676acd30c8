package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/santhosh-tekuri/jsonschema/v6"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
)

// contract holds the published schemas every answer on Clair's paths must
// validate against: Clair's JSON Schemas (testdata/fixtures/clair/schema)
// and the components of the OpenAPI document Quay validates Clair's answers
// with (quay-clair-v4.openapi.json), as Quay uses them (jsonschema, draft
// 2020-12, "#/components/schemas/..." references).
type contract struct {
	clair map[string]*jsonschema.Schema // by file name without .schema.json
	quay  map[string]*jsonschema.Schema // by component name
}

const clairSchemaBase = "https://clairproject.org/api/http/v1/"

func loadContract(t testing.TB) *contract {
	t.Helper()
	c := &contract{clair: map[string]*jsonschema.Schema{}, quay: map[string]*jsonschema.Schema{}}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft2020)
	comp.AssertFormat()
	dir := filepath.Dir(fixtures.Path(t, "clair/schema/index_report.schema.json"))
	files, err := filepath.Glob(filepath.Join(dir, "*.schema.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("Clair's schemas in %s: %v", dir, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := filepath.Base(f)
		overlayClair(t, name, doc)
		if err := comp.AddResource(clairSchemaBase+name, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	for _, n := range []string{"index_report", "index_state", "error"} {
		s, err := comp.Compile(clairSchemaBase + n + ".schema.json")
		if err != nil {
			t.Fatalf("compile Clair's %s schema: %v", n, err)
		}
		c.clair[n] = s
	}

	raw, err := os.ReadFile(fixtures.Path(t, "clair/quay-clair-v4.openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var oa struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &oa); err != nil {
		t.Fatalf("Quay's OpenAPI document: %v", err)
	}
	qc := jsonschema.NewCompiler()
	qc.DefaultDraft(jsonschema.Draft2020)
	const quayURL = "https://quay.example/clair-v4.openapi.json"
	if err := qc.AddResource(quayURL, map[string]any{"components": map[string]any{"schemas": oa.Components.Schemas}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"IndexReport", "State", "Error"} {
		s, err := qc.Compile(quayURL + "#/components/schemas/" + n)
		if err != nil {
			t.Fatalf("compile Quay's %s: %v", n, err)
		}
		c.quay[n] = s
	}
	return c
}

// overlayClair applies, to Clair's schemas as published, the two
// corrections Clair's own implementation makes necessary (see
// internal/api/clair.go and the README): package kind in lower case, and an
// empty distribution CPE. Each checks that the file still says what it is
// corrected for, so that an upstream fix is noticed.
func overlayClair(t testing.TB, name string, doc any) {
	t.Helper()
	m, _ := doc.(map[string]any)
	props, _ := m["properties"].(map[string]any)
	switch name {
	case "package.schema.json":
		kind, _ := props["kind"].(map[string]any)
		if fmt.Sprint(kind["enum"]) != "[BINARY SOURCE]" {
			t.Fatalf("package.schema.json: kind is %v now: revisit the lower-case correction", kind["enum"])
		}
		kind["enum"] = []any{"binary", "source"}
		delete(kind, "default")
	case "distribution.schema.json":
		cpe, _ := props["cpe"].(map[string]any)
		if cpe["$ref"] != "cpe.schema.json" {
			t.Fatalf("distribution.schema.json: cpe is %v now: revisit the empty-CPE correction", cpe)
		}
		props["cpe"] = map[string]any{"anyOf": []any{map[string]any{"const": ""}, map[string]any{"$ref": "cpe.schema.json"}}}
	}
}

// check validates an answer body against Clair's schema and Quay's
// component for it ("index_report", "index_state" or "error").
func (c *contract) check(t testing.TB, what string, body []byte) {
	t.Helper()
	quayName := map[string]string{"index_report": "IndexReport", "index_state": "State", "error": "Error"}[what]
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s answer is not JSON: %v: %s", what, err, body)
	}
	if err := c.clair[what].Validate(inst); err != nil {
		t.Errorf("%s answer fails Clair's schema: %v\n%s", what, err, body)
	}
	if err := c.quay[quayName].Validate(inst); err != nil {
		t.Errorf("%s answer fails Quay's %s: %v\n%s", what, quayName, err, body)
	}
}

// answer is one HTTP exchange.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// indexClair posts body to Clair's index_report, wants 201 (what names
// the step in a failure) and checks the answer against the contract.
func (h *harness) indexClair(t *testing.T, c *contract, what string, body []byte) answer {
	t.Helper()
	a := h.do("POST", "/indexer/api/v1/index_report", nil, body)
	if a.status != http.StatusCreated {
		t.Fatalf("%s: HTTP %d, want 201: %s", what, a.status, a.body)
	}
	c.check(t, "index_report", a.body)
	return a
}

func (h *harness) do(method, path string, header http.Header, body []byte) answer {
	h.t.Helper()
	req, err := http.NewRequest(method, h.api.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	// Quay's own timeout for an index request.
	resp, err := (&http.Client{Timeout: 600 * time.Second}).Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func decodeReport(t *testing.T, b []byte) *report.Report {
	t.Helper()
	r := new(report.Report)
	if err := json.Unmarshal(b, r); err != nil {
		t.Fatalf("report: %v: %s", err, b)
	}
	return r
}

func debianImage(h *harness, tag string) *report.Manifest {
	return h.push(tag,
		map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("libc6", "base-files")},
		map[string][]byte{"var/lib/dpkg/status": dpkgStatus("libc6", "base-files", "curl")},
	)
}

// checkClairHeaders checks the headers Clair sets on a POST index_report
// answer.
func checkClairHeaders(t *testing.T, a answer, d report.Digest, state string) {
	t.Helper()
	if got := a.header.Get("ETag"); got != `"`+state+`"` {
		t.Errorf("ETag %q, want the quoted index state %q", got, state)
	}
	if got := a.header.Get("Location"); got != "/indexer/api/v1/index_report/"+string(d) {
		t.Errorf("Location %q", got)
	}
	links := strings.Join(a.header.Values("Link"), ", ")
	for _, want := range []string{
		`</indexer/api/v1/index_report/` + string(d) + `>; rel="https://projectquay.io/clair/v1/index_report"`,
		`</matcher/api/v1/vulnerability_report/` + string(d) + `>; rel="https://projectquay.io/clair/v1/vulnerability_report"`,
	} {
		if !strings.Contains(links, want) {
			t.Errorf("Link headers %q lack %q", links, want)
		}
	}
}

// Quay's sequence, as util/secscan/v4/api.py plays it: index_state, a
// blocking index of a new image (201, IndexFinished, an etag), the report,
// the delete. Every answer validates against Clair's schemas and Quay's.
func TestQuaySequence(t *testing.T) {
	c := loadContract(t)
	h := newHarness(t)
	h.start(h.config(2, true))
	m := debianImage(h, "quay/app:1")
	body, _ := json.Marshal(m)

	a := h.do("GET", "/indexer/api/v1/index_state", nil, nil)
	if a.status != http.StatusOK {
		t.Fatalf("index_state: HTTP %d %s", a.status, a.body)
	}
	c.check(t, "index_state", a.body)
	var st struct{ State string }
	json.Unmarshal(a.body, &st)

	a = h.indexClair(t, c, "index", body)
	checkClairHeaders(t, a, m.Hash, st.State)
	r := decodeReport(t, a.body)
	if r.State != report.StateIndexFinished || !r.Success || len(r.Packages) != 3 || len(r.Distributions) != 1 {
		t.Fatalf("index answer: state %s success %v, %d packages, %d distributions", r.State, r.Success, len(r.Packages), len(r.Distributions))
	}
	for _, p := range r.Packages {
		if p.Kind != "binary" {
			t.Errorf("package %s kind %q, want binary", p.Name, p.Kind)
		}
	}
	indexed := a.body

	a = h.do("GET", "/indexer/api/v1/index_report/"+string(m.Hash), nil, nil)
	if a.status != http.StatusOK || !bytes.Equal(bytes.TrimSpace(a.body), bytes.TrimSpace(indexed)) {
		t.Fatalf("index_report: HTTP %d, want 200 and the indexed report:\n%s\n%s", a.status, a.body, indexed)
	}
	c.check(t, "index_report", a.body)

	a = h.do("DELETE", "/indexer/api/v1/index_report/"+string(m.Hash), nil, nil)
	if a.status != http.StatusNoContent {
		t.Fatalf("delete: HTTP %d %s", a.status, a.body)
	}
	a = h.do("GET", "/indexer/api/v1/index_report/"+string(m.Hash), nil, nil)
	if a.status != http.StatusNotFound {
		t.Fatalf("index_report after delete: HTTP %d", a.status)
	}
	c.check(t, "error", a.body)
}

// A RHEL image while the repository-to-CPE mapping is not loaded: Quay's
// index answers 201 with the report served as finished, the native API
// shows it partial with the reason and the next retry; once the mapping is
// imported the retry runs and the report is complete, with CPEs, and no
// layer was fetched again.
func TestQuaySequenceRHELWithoutEnrichmentData(t *testing.T) {
	c := loadContract(t)
	h := newHarness(t)
	cfg := h.partialConfig(1, true, "")
	cfg.Retry.Base, cfg.Retry.Max = time.Hour, time.Hour // only the import may start the retry
	reader := sdkmetric.NewManualReader()
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	h.start(cfg)
	m := h.push("rhel/app:1", rhelFiles(t, "8"))
	body, _ := json.Marshal(m)

	a := h.indexClair(t, c, "index", body)
	served := decodeReport(t, a.body)
	if served.State != report.StateIndexFinished || !served.Success || len(served.Packages) != 1 || len(served.Repositories) != 2 {
		t.Fatalf("served: state %s success %v, %d packages, %d repositories", served.State, served.Success, len(served.Packages), len(served.Repositories))
	}
	for _, repo := range served.Repositories {
		if repo.CPE != "" {
			t.Fatalf("repository %s has a CPE before the mapping is loaded: %s", repo.Name, repo.CPE)
		}
	}
	first := h.do("GET", "/indexer/api/v1/index_report/"+string(m.Hash), nil, nil)
	c.check(t, "index_report", first.body)

	checkWaitingForCPEs(t, h, reader, m.Hash)
	blobsBefore := h.reg.Counter().Requests(devregistry.ClassBlobs)
	if blobsBefore == 0 {
		t.Fatal("the first index fetched no blob")
	}
	h.reg.Counter().Reset()

	// The mapping is imported (as `stevedore enrichment import` does): the
	// sweep requeues the report, the retry completes it.
	if _, err := enrich.NewStore(postgres.New(h.pool)).Load(context.Background(), enrich.RepositoryCPE, "file:///repository-to-cpe.json", "", "", []byte(contentSetMapping)); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the retry to complete the report", 60*time.Second, func() bool {
		r, err := h.client.Report(context.Background(), m.Hash)
		return err == nil && r.State == report.StateIndexFinished
	})
	a = h.do("GET", "/indexer/api/v1/index_report/"+string(m.Hash), nil, nil)
	c.check(t, "index_report", a.body)
	done := decodeReport(t, a.body)
	var cpes []string
	for _, repo := range done.Repositories {
		cpes = append(cpes, repo.CPE)
	}
	slices.Sort(cpes)
	if fmt.Sprint(cpes) != "[cpe:/a:redhat:enterprise_linux:8::appstream cpe:/o:redhat:enterprise_linux:8::baseos]" {
		t.Fatalf("repository CPEs after the retry: %v", cpes)
	}
	if a.header.Get("ETag") == first.header.Get("ETag") {
		t.Fatalf("the complete report has the partial one's ETag %s", a.header.Get("ETag"))
	}
	// A client holding the partial report's ETag gets the new report.
	a = h.do("GET", "/indexer/api/v1/index_report/"+string(m.Hash), http.Header{"If-None-Match": {first.header.Get("ETag")}}, nil)
	if a.status != http.StatusOK {
		t.Fatalf("GET with the partial report's ETag: HTTP %d, want 200", a.status)
	}
	if n := h.reg.Counter().Requests(devregistry.ClassBlobs); n != 0 {
		t.Fatalf("the retry made %d blob requests, want 0", n)
	}
	native, _ := h.client.Report(context.Background(), m.Hash)
	if native.Attempt != 2 || len(native.Partial) != 0 {
		t.Fatalf("native report after the retry: attempt %d, partial %+v", native.Attempt, native.Partial)
	}
}

// checkWaitingForCPEs checks that the native report of d is partial,
// waiting for the repository-to-CPE mapping, and that the metrics say so.
func checkWaitingForCPEs(t *testing.T, h *harness, reader *sdkmetric.ManualReader, d report.Digest) {
	native, err := h.client.Report(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if native.State != report.StateIndexPartial || len(native.Partial) != 1 || native.Partial[0].Scanner != enrich.RepositoryCPE ||
		native.NextRetry == nil || native.Attempt != 1 {
		t.Fatalf("native report: state %s, partial %+v, next retry %v, attempt %d", native.State, native.Partial, native.NextRetry, native.Attempt)
	}
	// The metrics say so too.
	gauges := metricPoints(t, reader)
	if got := gauges["stevedore.reports.partial waiting_for=rhel-repository-cpe"]; got != 1 {
		t.Errorf("stevedore.reports.partial = %d, want 1 (all points: %v)", got, gauges)
	}
	if got := gauges["stevedore.reports.partial.max_attempt waiting_for=rhel-repository-cpe"]; got != 1 {
		t.Errorf("stevedore.reports.partial.max_attempt = %d, want 1", got)
	}
	if got := gauges["stevedore.api.partial_served as=finished"]; got < 2 {
		t.Errorf("stevedore.api.partial_served{as=finished} = %d, want the POST and the GET", got)
	}
}

// Every kind of answer on Clair's paths validates: a current report, an
// in-progress one (respond-async), an error report, an unknown and a
// deleted manifest, the state, and the errors of bad requests, unknown
// paths and methods.
func TestClairAnswersValidate(t *testing.T) {
	c := loadContract(t)
	h := newHarness(t)
	h.start(h.config(1, true))
	m := debianImage(h, "valid/app:1")
	body, _ := json.Marshal(m)

	checkIndexAnswers(t, h, c, body)
	checkReportGets(t, h, c, m)
	checkErrorReport(t, h, c)

	// Deleted, unknown: 204 both times, then 404.
	for range 2 {
		if a := h.do("DELETE", "/indexer/api/v1/index_report/"+string(m.Hash), nil, nil); a.status != http.StatusNoContent {
			t.Fatalf("DELETE: HTTP %d", a.status)
		}
	}
	a := h.do("GET", "/indexer/api/v1/index_report/"+string(m.Hash), nil, nil)
	if a.status != http.StatusNotFound {
		t.Fatalf("GET deleted: HTTP %d", a.status)
	}
	c.check(t, "error", a.body)

	checkErrorAnswers(t, h, c)
}

// checkIndexAnswers posts body asynchronously (202, the report as it is
// now), then again (201 once finished) and once more (current: 201 at
// once); every answer validates.
func checkIndexAnswers(t *testing.T, h *harness, c *contract, body []byte) {
	// Asynchronous, as asked: 202, the report as it is now, the preference
	// applied; the wait then gets the finished report.
	a := h.do("POST", "/indexer/api/v1/index_report", http.Header{"Prefer": {"respond-async"}}, body)
	if a.status != http.StatusAccepted || a.header.Get("Preference-Applied") != "respond-async" || a.header.Get("Retry-After") == "" {
		t.Fatalf("respond-async: HTTP %d, Preference-Applied %q: %s", a.status, a.header.Get("Preference-Applied"), a.body)
	}
	c.check(t, "index_report", a.body)
	if r := decodeReport(t, a.body); r.State.Terminal() {
		t.Fatalf("respond-async answered a terminal report: %s", r.State)
	}
	h.indexClair(t, c, "index after respond-async", body)
	// Current: 201 at once.
	h.indexClair(t, c, "index of a current report", body)
}

// checkReportGets gets m's report with every Accept, checks that the
// validators do reject, then the ETag's 304 and index_state.
func checkReportGets(t *testing.T, h *harness, c *contract, m *report.Manifest) {
	var a answer
	// GET: Accept, ETag, 304.
	for _, accept := range []string{"", "application/vnd.clair.index_report.v1+json", "application/json", "*/*", "text/html;q=0.9, application/*"} {
		hdr := http.Header{}
		if accept != "" {
			hdr.Set("Accept", accept)
		}
		a = h.do("GET", "/indexer/api/v1/index_report/"+string(m.Hash), hdr, nil)
		if a.status != http.StatusOK || a.header.Get("ETag") == "" {
			t.Fatalf("GET with Accept %q: HTTP %d, ETag %q", accept, a.status, a.header.Get("ETag"))
		}
		c.check(t, "index_report", a.body)
	}
	// The validators do reject: the native report carries Stevedore's
	// fields, which Clair's schema forbids, and an upper-case kind is not
	// what Clair writes.
	native := h.do("GET", "/api/v1/reports/"+string(m.Hash), nil, nil)
	if inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(native.body)); err != nil || c.clair["index_report"].Validate(inst) == nil {
		t.Fatalf("Clair's schema accepts the native report (%v): %s", err, native.body)
	}
	upper := bytes.ReplaceAll(a.body, []byte(`"kind":"binary"`), []byte(`"kind":"BINARY"`))
	if inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(upper)); bytes.Equal(upper, a.body) || c.clair["index_report"].Validate(inst) == nil {
		t.Fatal("Clair's schema (with the lower-case correction) accepts an upper-case kind")
	}
	h.checkStoredAnswer(m.Hash, a)
	etag := a.header.Get("ETag")
	a = h.do("GET", "/indexer/api/v1/index_report/"+string(m.Hash), http.Header{"If-None-Match": {etag}}, nil)
	if a.status != http.StatusNotModified || len(a.body) != 0 {
		t.Fatalf("GET with its ETag: HTTP %d, want 304", a.status)
	}
	a = h.do("GET", "/indexer/api/v1/index_state", http.Header{"Accept": {"application/vnd.clair.index_state.v1+json"}}, nil)
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/vnd.clair.index_state.v1+json" {
		t.Fatalf("index_state: HTTP %d, Content-Type %q", a.status, a.header.Get("Content-Type"))
	}
	c.check(t, "index_state", a.body)
}

// checkErrorReport indexes a manifest whose blob is missing: its error
// report validates.
func checkErrorReport(t *testing.T, h *harness, c *contract) {
	// An error report.
	blobs := newBlobServer(t)
	bad := manifestOf(&report.Layer{Hash: report.Digest("sha256:" + strings.Repeat("c", 64)), URI: blobs.srv.URL + "/blobs/absent"})
	badBody, _ := json.Marshal(bad)
	a := h.do("POST", "/indexer/api/v1/index_report", nil, badBody)
	if a.status != http.StatusCreated {
		t.Fatalf("index of a missing blob: HTTP %d %s", a.status, a.body)
	}
	c.check(t, "index_report", a.body)
	if r := decodeReport(t, a.body); r.State != report.StateIndexError || r.Success || r.Err == "" {
		t.Fatalf("error report: state %s success %v err %q", r.State, r.Success, r.Err)
	}
}

// checkErrorAnswers checks that every refusal is JSON that validates.
func checkErrorAnswers(t *testing.T, h *harness, c *contract) {
	// Errors, every one JSON.
	d64 := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name, method, path string
		header             http.Header
		body               string
		status             int
		allow              string
	}{
		{"malformed json", "POST", "/indexer/api/v1/index_report", nil, `{"hash"`, 400, ""},
		{"not acceptable", "GET", "/indexer/api/v1/index_report/sha256:" + d64, http.Header{"Accept": {"text/html"}}, "", 415, ""},
		{"malformed accept", "GET", "/indexer/api/v1/index_state", http.Header{"Accept": {"text/"}}, "", 400, ""},
		{"state not acceptable", "GET", "/indexer/api/v1/index_state", http.Header{"Accept": {"image/png"}}, "", 415, ""},
		{"malformed digest", "GET", "/indexer/api/v1/index_report/sha256:12", nil, "", 400, ""},
		{"unknown path", "GET", "/indexer/api/v1/nothing", nil, "", 404, ""},
		{"unknown matcher path", "GET", "/no/such/thing", nil, "", 404, ""},
		{"wrong method", "PUT", "/indexer/api/v1/index_report/sha256:" + d64, nil, "", 405, "DELETE, GET, HEAD"},
		{"wrong method on state", "POST", "/indexer/api/v1/index_state", nil, "{}", 405, "GET, HEAD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := h.do(tc.method, tc.path, tc.header, []byte(tc.body))
			if a.status != tc.status || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
				t.Fatalf("HTTP %d %q, want %d in JSON: %s", a.status, a.header.Get("Content-Type"), tc.status, a.body)
			}
			c.check(t, "error", a.body)
			if tc.allow != "" && a.header.Get("Allow") != tc.allow {
				t.Errorf("Allow %q, want %q", a.header.Get("Allow"), tc.allow)
			}
		})
	}
}

// The operator switch: partial reports served as IndexPartial on Clair's
// paths.
func TestClairServePartialSwitch(t *testing.T) {
	h := newHarness(t)
	cfg := h.partialConfig(1, true, "")
	cfg.ClairServePartial = true
	h.start(cfg)
	m := h.push("rhel/partial:1", rhelFiles(t, "9"))
	// Stevedore's Go client, blocking as Clair's clients do.
	r, status, err := h.client.IndexManifestWait(context.Background(), m)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("index: HTTP %d %v", status, err)
	}
	if r.State != report.StateIndexPartial || !r.Success || len(r.Packages) != 1 {
		t.Fatalf("served with the switch: state %s success %v, %d packages", r.State, r.Success, len(r.Packages))
	}
	a := h.do("GET", "/indexer/api/v1/index_report/"+string(m.Hash), nil, nil)
	h.checkStoredAnswer(m.Hash, a)
	// Stevedore's fields stay off Clair's paths either way.
	var raw map[string]any
	json.Unmarshal(a.body, &raw)
	keys := slices.Sorted(maps.Keys(raw))
	if fmt.Sprint(keys) != "[distributions environments err manifest_hash packages repository state success]" {
		t.Fatalf("fields on Clair's path: %v", keys)
	}
}

// metricPoints collects int64 sums and gauges as "name k=v ..." -> value.
func metricPoints(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	add := func(name string, dps []metricdata.DataPoint[int64]) {
		for _, dp := range dps {
			key := name
			for _, kv := range dp.Attributes.ToSlice() {
				key += " " + string(kv.Key) + "=" + kv.Value.String()
			}
			out[key] += dp.Value
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				add(m.Name, d.DataPoints)
			case metricdata.Gauge[int64]:
				add(m.Name, d.DataPoints)
			}
		}
	}
	return out
}

// checkClairAnswer validates what Clair's clients get for d (GET
// index_report) against Clair's schemas and Quay's.
func (h *harness) checkClairAnswer(d report.Digest) {
	h.t.Helper()
	if h.contract == nil {
		h.contract = loadContract(h.t)
	}
	a := h.do("GET", "/indexer/api/v1/index_report/"+string(d), nil, nil)
	if a.status != http.StatusOK {
		h.t.Fatalf("GET index_report of %s: HTTP %d %s", d, a.status, a.body)
	}
	h.contract.check(h.t, "index_report", a.body)
	h.checkStoredAnswer(d, a)
}

// checkStoredAnswer checks that a, a GET index_report of the terminal report
// of d, was its answer stored with the report, and that this stored answer
// is byte for byte Clair's view of the report as the store reads it back
// (what the API served before answers were stored).
func (h *harness) checkStoredAnswer(d report.Digest, a answer) {
	h.t.Helper()
	ctx := context.Background()
	rep, err := postgres.New(h.pool).Report(ctx, d)
	if err != nil {
		h.t.Fatal(err)
	}
	var served struct{ State report.State }
	if err := json.Unmarshal(a.body, &served); err != nil {
		h.t.Fatal(err)
	}
	view := reportbody.ClairViewOf(rep, served.State == report.StateIndexPartial)
	var stored []byte
	var etag, encoding string
	err = h.pool.QueryRow(ctx, `
SELECT b.etag, b.encoding, string_agg(c.data, ''::bytea ORDER BY c.seq)
  FROM report_body b JOIN report_body_chunk c ON c.body_id = b.id
 WHERE b.manifest_hash = $1 AND b.view = $2 GROUP BY b.etag, b.encoding`, string(d), view).Scan(&etag, &encoding, &stored)
	if err != nil {
		h.t.Fatalf("stored %s answer of %s: %v", view, d, err)
	}
	// Stored gzip compressed, and served so to this client (Go's, which
	// asks for gzip and decompresses): the answer's ETag is the stored one,
	// weak.
	if encoding != reportbody.EncodingGzip {
		h.t.Fatalf("stored %s answer of %s: content coding %q, want gzip", view, d, encoding)
	}
	zr, err := gzip.NewReader(bytes.NewReader(stored))
	if err != nil {
		h.t.Fatal(err)
	}
	if stored, err = io.ReadAll(zr); err != nil {
		h.t.Fatal(err)
	}
	want, err := reportbody.Clair(rep, view == reportbody.ViewClairPartial)
	if err != nil {
		h.t.Fatal(err)
	}
	if !bytes.Equal(stored, want) || !bytes.Equal(a.body, stored) || a.header.Get("ETag") != "W/"+etag || etag != reportbody.ETag(rep, view) {
		h.t.Fatalf("stored %s answer of %s (%d bytes, ETag %s) differs from Clair's view of the stored report (%d bytes, ETag %s) or from the answer served (%d bytes, ETag %s)",
			view, d, len(stored), etag, len(want), reportbody.ETag(rep, view), len(a.body), a.header.Get("ETag"))
	}
}

// When the wait ends before the report is done, the answer is 202 with the
// report as it is and Retry-After; the job goes on (once), and the next
// request gets 201 with the finished report. Prefer: wait=N asks for a
// shorter wait than the server's.
func TestIndexWaitEnds(t *testing.T) {
	c := loadContract(t)
	hold := newHold()
	h := newHarness(t, devregistry.WithMiddleware(hold.middleware))
	h.start(h.config(1, true))
	m := debianImage(h, "slow/app:1")
	hold.set(string(m.Layers[0].Hash))
	body, _ := json.Marshal(m)
	a := h.do("POST", "/indexer/api/v1/index_report", http.Header{"Prefer": {"wait=1"}}, body)
	if a.status != http.StatusAccepted || a.header.Get("Retry-After") == "" || a.header.Get("Preference-Applied") != "wait=1" {
		t.Fatalf("wait ended: HTTP %d, Retry-After %q, Preference-Applied %q: %s", a.status, a.header.Get("Retry-After"), a.header.Get("Preference-Applied"), a.body)
	}
	c.check(t, "index_report", a.body)
	checkClairHeaders(t, a, m.Hash, h.indexState())
	if r := decodeReport(t, a.body); r.State.Terminal() {
		t.Fatalf("the layer is held, yet the report is %s", r.State)
	}
	close(hold.open)
	a = h.do("POST", "/indexer/api/v1/index_report", nil, body)
	if a.status != http.StatusCreated {
		t.Fatalf("after the layer came: HTTP %d %s", a.status, a.body)
	}
	if r := decodeReport(t, a.body); r.State != report.StateIndexFinished || len(r.Packages) != 3 {
		t.Fatalf("after the layer came: state %s, %d packages", r.State, len(r.Packages))
	}
	if runs, finished := h.runs(m.Hash); runs != 1 || finished != 1 {
		t.Fatalf("%d runs, %d final writes, want 1 and 1", runs, finished)
	}
}

// indexState reads the server's index state.
func (h *harness) indexState() string {
	h.t.Helper()
	var st struct{ State string }
	if err := json.Unmarshal(h.do("GET", "/indexer/api/v1/index_state", nil, nil).body, &st); err != nil || st.State == "" {
		h.t.Fatalf("index_state: %v %q", err, st.State)
	}
	return st.State
}
