package harbor_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/api/harbor"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/testing/sbomcheck"
	"github.com/stevedore-dev/stevedore/report"
)

const (
	pathMetadata = "/metadata"
	pathScan     = "/scan"
	pathReport   = "/scan/{scan_request_id}/report"
)

// TestHarborScannerAPI plays Harbor's calls, as its client makes them,
// against the API and checks every answer against Harbor's OpenAPI
// document: the metadata (and Harbor's own checks of it), a scan request
// with a robot account's basic credentials (queued with them on its
// layers, for the worker, and nowhere else), the report while the job runs
// (302 with a Refresh-After Harbor can read), the report once finished in
// both SBOM media types (valid against the document and, the SBOM inside,
// against the official SPDX and CycloneDX schemas, with the stored
// report's packages), and the same id served by another server (a
// restart).
func TestHarborScannerAPI(t *testing.T) {
	w := newWorld(t)
	regURL := "http://" + w.reg.Addr

	t.Run("metadata", func(t *testing.T) { checkHarborMetadata(t, w) })

	var spdxID, bothID string
	t.Run("scan", func(t *testing.T) { checkHarborScan(t, w, regURL, &spdxID, &bothID) })

	t.Run("scan with Harbor's bearer token", func(t *testing.T) {
		// What Harbor sends for a scanner whose metadata asks for Bearer.
		a := w.harbor.submit(t, harborRequest(regURL, "Bearer "+harborToken, "library/other", "1", w.other.Hash))
		if a.status != http.StatusAccepted {
			t.Fatalf("HTTP %d %s", a.status, a.body)
		}
		w.k.checkAnswer(t, "POST", pathScan, a.status, a.header, a.body)
		for i, l := range w.job(t, w.other.Hash).Manifest.Layers {
			if l.Headers.Get("Authorization") != "Bearer "+harborToken {
				t.Errorf("layer %d: the token is not its Authorization", i)
			}
		}
	})

	t.Run("report pending", func(t *testing.T) {
		a := w.harbor.report(t, spdxID, harbor.MediaTypeSPDX)
		if a.status != http.StatusFound {
			t.Fatalf("HTTP %d %s", a.status, a.body)
		}
		w.k.checkAnswer(t, "GET", pathReport, a.status, a.header, a.body)
		if s := refreshAfter(t, a.header); s != 5 {
			t.Errorf("Refresh-After %d", s)
		}
	})

	rep := finished(w.alpine)
	w.write(rep)
	stored, err := w.st.Report(context.Background(), w.alpine.Hash)
	if err != nil {
		t.Fatal(err)
	}
	check := sbomcheck.New(t)
	for _, tc := range []struct{ name, id, mediaType string }{
		{"report ready SPDX", spdxID, harbor.MediaTypeSPDX},
		{"report ready CycloneDX", bothID, harbor.MediaTypeCycloneDX},
		{"report ready SPDX of the second request", bothID, harbor.MediaTypeSPDX},
	} {
		t.Run(tc.name, func(t *testing.T) { checkHarborReportReady(t, w, stored, check, tc.id, tc.mediaType) })
	}

	t.Run("the id survives a restart", func(t *testing.T) {
		srv := httptest.NewServer(api.New(w.d, w.st, discard, nil, api.WithHarbor(harbor.Config{Token: token})))
		defer srv.Close()
		a := newHarborClient(srv.URL+harbor.Prefix, token).report(t, spdxID, harbor.MediaTypeSPDX)
		if a.status != http.StatusOK {
			t.Fatalf("HTTP %d %s", a.status, a.body)
		}
	})

	t.Run("no secret in logs or the database", func(t *testing.T) {
		w.noSecrets(t, "the logs", []byte(w.logs.String()))
		var dump string
		if err := w.st.Pool().QueryRow(context.Background(), `SELECT coalesce(string_agg(r::text, E'\n'), '') FROM index_report r`).Scan(&dump); err != nil {
			t.Fatal(err)
		}
		w.noSecrets(t, "index_report", []byte(dump))
	})
}

// checkHarborMetadata checks the scanner's metadata, in both versions of its type.
func checkHarborMetadata(t *testing.T, w *world) {
	a := w.harbor.metadata(t)
	if a.status != http.StatusOK {
		t.Fatalf("HTTP %d %s", a.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != harbor.MimeMetadata {
		t.Errorf("Content-Type %q, want %q", ct, harbor.MimeMetadata)
	}
	w.k.checkAnswer(t, "GET", pathMetadata, a.status, a.header, a.body)
	var md harbor.Metadata
	if err := json.Unmarshal(a.body, &md); err != nil {
		t.Fatal(err)
	}
	// Harbor's ScannerAdapterMetadata.Validate (models.go): a name,
	// vendor and version; every capability consumes Docker's v2
	// manifest and produces a report type Harbor knows.
	if md.Scanner.Name != "Stevedore" || md.Scanner.Vendor == "" || md.Scanner.Version == "" {
		t.Errorf("scanner %+v", md.Scanner)
	}
	if len(md.Capabilities) != 1 {
		t.Fatalf("capabilities %+v", md.Capabilities)
	}
	c := md.Capabilities[0]
	if c.Type != "sbom" || !slices.Contains(c.ConsumesMimeTypes, harbor.MimeDockerManifest) ||
		!slices.Contains(c.ConsumesMimeTypes, harbor.MimeOCIManifest) || !slices.Equal(c.ProducesMimeTypes, []string{harbor.MimeSBOMReport}) {
		t.Errorf("capability %+v", c)
	}
	types, _ := json.Marshal(c.AdditionalAttributes["sbom_media_types"])
	if string(types) != `["application/spdx+json","application/vnd.cyclonedx+json"]` {
		t.Errorf("sbom_media_types %s", types)
	}
	if md.Properties[harbor.PropertyAuthType] != "Bearer" || md.Properties[harbor.PropertyScannerState] != stateOfSet {
		t.Errorf("properties %v", md.Properties)
	}
	// The document's other version of the type, when asked for alone.
	a = w.harbor.do(t, "GET", "/api/v1/metadata", http.Header{"Accept": {harbor.MimeMetadata11}}, nil)
	if a.status != http.StatusOK || a.header.Get("Content-Type") != harbor.MimeMetadata11 {
		t.Errorf("version 1.1: HTTP %d %q", a.status, a.header.Get("Content-Type"))
	}
	w.k.checkAnswer(t, "GET", pathMetadata, a.status, a.header, a.body)
}

// checkHarborScan submits a scan of the alpine image, checks the job it
// queues, then submits one for both media types; it sets both ids as soon
// as they are known.
func checkHarborScan(t *testing.T, w *world, regURL string, spdxID, bothID *string) {
	body := harborRequest(regURL, robotBasic, "library/alpine", "3.10", w.alpine.Hash)
	w.k.validate(t, "ScanRequest", body)
	if !slices.Contains(w.k.requestTypes(t, "POST", pathScan), "application/vnd.scanner.adapter.scan.request+json; version=1.0") {
		t.Fatal("the document does not take Harbor's request type")
	}
	a := w.harbor.submit(t, body)
	if a.status != http.StatusAccepted {
		t.Fatalf("HTTP %d %s", a.status, a.body)
	}
	w.k.checkAnswer(t, "POST", pathScan, a.status, a.header, a.body)
	*spdxID = id(t, a)
	// The job carries the robot's credentials on every layer, for
	// the worker, and only there.
	j := w.job(t, w.alpine.Hash)
	if j.Manifest.Hash != w.alpine.Hash || len(j.Manifest.Layers) != len(w.alpine.Layers) {
		t.Fatalf("job manifest %+v", j.Manifest)
	}
	for i, l := range j.Manifest.Layers {
		want := "http://" + w.reg.Addr + "/v2/library/alpine/blobs/" + string(w.alpine.Layers[i].Hash)
		if l.Hash != w.alpine.Layers[i].Hash || l.URI != want || l.Headers.Get("Authorization") != robotBasic {
			t.Errorf("layer %d: %s %s, Authorization given: %v", i, l.Hash, l.URI, l.Headers.Get("Authorization") == robotBasic)
		}
	}
	// A second request for both media types: another id, no second job.
	a = w.harbor.submit(t, harborRequest(regURL, robotBasic, "library/alpine", "", w.alpine.Hash, harbor.MediaTypeSPDX, harbor.MediaTypeCycloneDX))
	if a.status != http.StatusAccepted {
		t.Fatalf("HTTP %d %s", a.status, a.body)
	}
	if *bothID = id(t, a); *bothID == *spdxID {
		t.Error("the same id for different media types")
	}
}

// checkHarborReportReady checks the finished report of scan id in mediaType
// against the stored report.
func checkHarborReportReady(t *testing.T, w *world, stored *report.Report, check *sbomcheck.Checker, id, mediaType string) {
	a := w.harbor.report(t, id, mediaType)
	if a.status != http.StatusOK {
		t.Fatalf("HTTP %d %s", a.status, a.body)
	}
	if name := w.k.checkAnswer(t, "GET", pathReport, a.status, a.header, a.body); name != "HarborSbomReport" {
		t.Fatalf("validated as %q", name)
	}
	var r harbor.SBOMReport
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatal(err)
	}
	if r.MediaType != mediaType || r.Artifact.Digest != string(w.alpine.Hash) || r.Artifact.Repository != "library/alpine" ||
		r.Scanner.Name != "Stevedore" || !r.GeneratedAt.Equal(stored.UpdatedAt) {
		t.Errorf("report %+v %+v %s %s", r.Artifact, r.Scanner, r.MediaType, r.GeneratedAt)
	}
	if mediaType == harbor.MediaTypeSPDX {
		sbomcheck.CheckSPDX(t, stored, check.SPDX(t, r.SBOM))
	} else {
		sbomcheck.CheckCycloneDX(t, stored, check.CycloneDX(t, r.SBOM))
	}
}

// TestHarborScanBadRequests: every refusal of POST /api/v1/scan is an
// answer Harbor's document declares (400 for a body that is not a
// ScanRequest, 422 for an invalid field, 501 for what Stevedore does not
// do), an ErrorResponse naming the field, never showing the credentials;
// nothing is queued.
func TestHarborScanBadRequests(t *testing.T) {
	w := newWorld(t)
	regURL := "http://" + w.reg.Addr
	good := func(mut func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(harborRequest(regURL, robotBasic, "library/alpine", "3.10", w.alpine.Hash), &m)
		mut(m)
		b, _ := json.Marshal(m)
		return b
	}
	reg := func(m map[string]any) map[string]any { return m["registry"].(map[string]any) }
	art := func(m map[string]any) map[string]any { return m["artifact"].(map[string]any) }
	capab := func(m map[string]any) map[string]any { return m["enabled_capabilities"].([]any)[0].(map[string]any) }
	wrongPass := "Basic " + base64Std(robotName+":not-the-password-"+robotPass)
	for _, tc := range []struct {
		name   string
		ctype  string
		body   []byte
		status int
		want   string
	}{
		{"not JSON", "", []byte(`{"registry": `), 400, "invalid JSON"},
		{"empty body", "", nil, 400, "empty"},
		{"two documents", "", []byte(`{} {}`), 400, "more than one"},
		{"wrong type", "", []byte(`{"registry": "https://x", "artifact": {}}`), 400, `field "registry"`},
		{"wrong content type", "text/plain", good(func(map[string]any) {}), 400, "Content-Type"},
		{"no registry", "", good(func(m map[string]any) { delete(m, "registry") }), 422, "registry: required"},
		{"no artifact", "", good(func(m map[string]any) { delete(m, "artifact") }), 422, "artifact: required"},
		{"no registry url", "", good(func(m map[string]any) { reg(m)["url"] = "" }), 422, "registry.url: required"},
		{"relative registry url", "", good(func(m map[string]any) { reg(m)["url"] = w.reg.Addr }), 422, "registry.url"},
		{"registry url with a path", "", good(func(m map[string]any) { reg(m)["url"] = regURL + "/v2/" }), 422, "base URL"},
		{"registry url with credentials", "", good(func(m map[string]any) { reg(m)["url"] = "http://u:" + robotPass + "@" + w.reg.Addr }), 422, "registry.url"},
		{"authorization scheme", "", good(func(m map[string]any) { reg(m)["authorization"] = "Digest " + robotPass }), 422, "registry.authorization"},
		{"authorization not base64", "", good(func(m map[string]any) { reg(m)["authorization"] = "Basic " + robotPass + "!" }), 422, "not base64"},
		{"authorization with a newline", "", good(func(m map[string]any) { reg(m)["authorization"] = robotBasic + "\r\nX: y" }), 422, "control characters"},
		{"no repository", "", good(func(m map[string]any) { art(m)["repository"] = "" }), 422, "artifact.repository: required"},
		{"bad repository", "", good(func(m map[string]any) { art(m)["repository"] = "library/../etc" }), 422, "artifact.repository"},
		{"bad digest", "", good(func(m map[string]any) { art(m)["digest"] = "sha256:abc" }), 422, "artifact.digest"},
		{"bad tag", "", good(func(m map[string]any) { art(m)["tag"] = "-x/y" }), 422, "artifact.tag"},
		{"an image index", "", good(func(m map[string]any) { art(m)["mime_type"] = "application/vnd.oci.image.index.v1+json" }), 501, "artifact.mime_type"},
		{"unknown capability", "", good(func(m map[string]any) { capab(m)["type"] = "malware" }), 422, "enabled_capabilities[0].type"},
		{"vulnerability only", "", good(func(m map[string]any) { capab(m)["type"] = "vulnerability" }), 501, "sbom capability only"},
		{"another report type", "", good(func(m map[string]any) {
			capab(m)["produces_mime_types"] = []string{"application/vnd.security.vulnerability.report; version=1.1"}
		}), 501, "produces_mime_types"},
		{"unknown SBOM media type", "", good(func(m map[string]any) {
			capab(m)["parameters"] = map[string]any{"sbom_media_types": []string{"text/spdx"}}
		}), 422, "sbom_media_types[0]"},
		{"credentials the registry refuses", "", good(func(m map[string]any) { reg(m)["authorization"] = wrongPass }), 422, "registry refused"},
		{"no credentials", "", good(func(m map[string]any) { delete(reg(m), "authorization") }), 422, "registry refused"},
		{"an artifact the registry does not have", "", good(func(m map[string]any) {
			art(m)["digest"] = "sha256:" + strings.Repeat("0", 64)
		}), 422, "has no manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Accept": {harbor.MimeScanResponse}, "Content-Type": {"application/vnd.scanner.adapter.scan.request+json; version=1.0"}}
			if tc.ctype != "" {
				h.Set("Content-Type", tc.ctype)
			}
			a := w.harbor.do(t, "POST", "/api/v1/scan", h, tc.body)
			if a.status != tc.status {
				t.Fatalf("HTTP %d %s, want %d", a.status, a.body, tc.status)
			}
			w.k.checkAnswer(t, "POST", pathScan, a.status, a.header, a.body)
			if msg := errorMessage(t, a.body); !strings.Contains(msg, tc.want) {
				t.Errorf("message %q does not mention %q", msg, tc.want)
			}
			w.noSecrets(t, "the answer", a.body)
		})
	}
	var n int
	if err := w.st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM index_report`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d reports queued (%v)", n, err)
	}
	w.noSecrets(t, "the logs", []byte(w.logs.String()))
}

// TestHarborScanRegistryRefusals: a registry outside the allowlist is
// refused before it is contacted (422), and a registry slower than the
// lookup's budget answers 500 within Harbor's 5 seconds.
func TestHarborScanRegistryRefusals(t *testing.T) {
	w := newWorld(t)
	body := harborRequest("http://"+w.reg.Addr, robotBasic, "library/alpine", "3.10", w.alpine.Hash)
	d := intake.New(w.st, nil, nil, stateOfSet, discard, intake.WithAllowlist(registry.Allowlist{"harbor.example.com"}))
	srv := httptest.NewServer(api.New(d, w.st, discard, nil, api.WithHarbor(harbor.Config{Token: token})))
	defer srv.Close()
	w.reg.Counter().Reset()
	a := newHarborClient(srv.URL+harbor.Prefix, token).submit(t, body)
	if a.status != http.StatusUnprocessableEntity || !strings.Contains(errorMessage(t, a.body), "allowlist") {
		t.Errorf("registry not allowed: HTTP %d %s", a.status, a.body)
	}
	w.k.checkAnswer(t, "POST", pathScan, a.status, a.header, a.body)
	if n := len(w.reg.Counter().Log()); n != 0 {
		t.Errorf("the registry was asked %d times", n)
	}

	w.gate.slow.Store(true)
	slow := httptest.NewServer(api.New(w.d, w.st, discard, nil, api.WithHarbor(harbor.Config{Token: token, ResolveTimeout: 300 * time.Millisecond})))
	defer slow.Close()
	start := time.Now()
	a = newHarborClient(slow.URL+harbor.Prefix, token).submit(t, body)
	if a.status != http.StatusInternalServerError || !strings.Contains(errorMessage(t, a.body), "did not answer within 300ms") || time.Since(start) > 2*time.Second {
		t.Errorf("slow registry: HTTP %d %s after %s", a.status, a.body, time.Since(start))
	}
	w.k.checkAnswer(t, "POST", pathScan, a.status, a.header, a.body)
}

// TestHarborReportErrors: the report's refusals, each an answer Harbor's
// document declares: 404 for an id this server did not make (tampered,
// made with another token, not an id), 400 for a missing, unknown or
// not-asked-for sbom_media_type, 501 for another report type, 500 with
// the reason when indexing failed.
func TestHarborReportErrors(t *testing.T) {
	w := newWorld(t)
	regURL := "http://" + w.reg.Addr
	a := w.harbor.submit(t, harborRequest(regURL, robotBasic, "library/other", "1", w.other.Hash))
	if a.status != http.StatusAccepted {
		t.Fatalf("HTTP %d %s", a.status, a.body)
	}
	good := id(t, a)
	// An id made by a server with another token.
	other := httptest.NewServer(api.New(w.d, w.st, discard, nil, api.WithHarbor(harbor.Config{Token: "another-registration-token-99"})))
	defer other.Close()
	a = newHarborClient(other.URL+harbor.Prefix, "another-registration-token-99").submit(t, harborRequest(regURL, robotBasic, "library/other", "1", w.other.Hash))
	if a.status != http.StatusAccepted {
		t.Fatalf("HTTP %d %s", a.status, a.body)
	}
	foreign := id(t, a)
	tampered := good[:len(good)-3] + "AAA"
	if tampered == good {
		tampered = good[:len(good)-3] + "BBB"
	}
	for _, tc := range []struct {
		name, id, query, accept string
		status                  int
		want                    string
	}{
		{"tampered id", tampered, "sbom_media_type=application%2Fspdx%2Bjson", harbor.MimeSBOMReport, 404, "no scan request"},
		{"another token's id", foreign, "sbom_media_type=application%2Fspdx%2Bjson", harbor.MimeSBOMReport, 404, "no scan request"},
		{"not an id", "3fa85f64-5717-4562-b3fc-2c963f66afa6", "sbom_media_type=application%2Fspdx%2Bjson", harbor.MimeSBOMReport, 404, "no scan request"},
		{"no sbom_media_type", good, "", harbor.MimeSBOMReport, 400, "sbom_media_type"},
		{"unknown sbom_media_type", good, "sbom_media_type=text%2Fplain", harbor.MimeSBOMReport, 400, "sbom_media_type"},
		{"sbom_media_type not asked for", good, "sbom_media_type=application%2Fvnd.cyclonedx%2Bjson", harbor.MimeSBOMReport, 400, "not asked for"},
		{"a vulnerability report", good, "", "application/vnd.security.vulnerability.report; version=1.1", 501, "Accept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := w.harbor.do(t, "GET", "/api/v1/scan/"+tc.id+"/report?"+tc.query, http.Header{"Accept": {tc.accept}}, nil)
			if a.status != tc.status {
				t.Fatalf("HTTP %d %s, want %d", a.status, a.body, tc.status)
			}
			w.k.checkAnswer(t, "GET", pathReport, a.status, a.header, a.body)
			if msg := errorMessage(t, a.body); !strings.Contains(msg, tc.want) {
				t.Errorf("message %q does not mention %q", msg, tc.want)
			}
		})
	}
	t.Run("index error", func(t *testing.T) {
		failed := report.NewReport(w.other.Hash, report.StateIndexError)
		failed.Err = "fetch layer sha256:...: HTTP 404"
		failed.ScannerState = stateOfSet
		w.write(failed)
		a := w.harbor.report(t, good, harbor.MediaTypeSPDX)
		if a.status != http.StatusInternalServerError {
			t.Fatalf("HTTP %d %s", a.status, a.body)
		}
		w.k.checkAnswer(t, "GET", pathReport, a.status, a.header, a.body)
		if msg := errorMessage(t, a.body); !strings.Contains(msg, "HTTP 404") {
			t.Errorf("message %q", msg)
		}
	})
	t.Run("deleted report", func(t *testing.T) {
		if _, err := w.st.DeleteManifest(context.Background(), w.other.Hash); err != nil {
			t.Fatal(err)
		}
		a := w.harbor.report(t, good, harbor.MediaTypeSPDX)
		if a.status != http.StatusNotFound {
			t.Fatalf("HTTP %d %s", a.status, a.body)
		}
		w.k.checkAnswer(t, "GET", pathReport, a.status, a.header, a.body)
	})
}

// TestHarborAuthentication: every path wants the registration's bearer
// token (401 with an ErrorResponse otherwise, whatever the request); a
// server without a token answers 404 saying how to enable the API.
func TestHarborAuthentication(t *testing.T) {
	w := newWorld(t)
	body := harborRequest("http://"+w.reg.Addr, robotBasic, "library/alpine", "", w.alpine.Hash)
	calls := []struct{ method, path, spec string }{
		{"GET", "/api/v1/metadata", pathMetadata},
		{"POST", "/api/v1/scan", pathScan},
		{"GET", "/api/v1/scan/x/report?sbom_media_type=application%2Fspdx%2Bjson", pathReport},
	}
	for _, auth := range []string{"", "Bearer", "Bearer wrong-token-of-some-length", "Bearer " + token + "x", "Basic " + base64Std("harbor:"+token), token} {
		for _, c := range calls {
			a := w.harbor.do(t, c.method, c.path, http.Header{"Authorization": {auth}, "Content-Type": {"application/json"}}, body)
			if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with %q: HTTP %d %s", c.method, c.path, auth, a.status, a.body)
				continue
			}
			errorMessage(t, a.body)
			w.noSecrets(t, "the answer", a.body)
		}
	}
	var n int
	if err := w.st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM index_report`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d reports queued (%v)", n, err)
	}
	off := httptest.NewServer(api.New(w.d, w.st, discard, nil))
	defer off.Close()
	for _, c := range calls {
		a := newHarborClient(off.URL+harbor.Prefix, token).do(t, c.method, c.path, nil, body)
		if a.status != http.StatusNotFound || !strings.Contains(errorMessage(t, a.body), "STEVEDORE_HARBOR_TOKEN") {
			t.Errorf("disabled: %s %s: HTTP %d %s", c.method, c.path, a.status, a.body)
		}
	}
}

var discard = slog.New(slog.DiscardHandler)

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
