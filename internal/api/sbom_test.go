package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/sbom"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/internal/testing/sbomcheck"
	"github.com/stevedore-dev/stevedore/report"
)

// TestSBOMHTTP serves stored reports in each state as SBOMs: a finished
// report in both formats (the bytes internal/sbom writes for the stored report,
// valid against the schemas), 304 on its ETag, and the refusals with their
// codes.
func TestSBOMHTTP(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	put := func(r *report.Report) {
		t.Helper()
		l, err := leases.New(pool, "test", leases.WithTTL(time.Minute)).Acquire(ctx, string(r.Hash))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
		if err := st.WriteReport(ctx, postgres.Fence{Digest: r.Hash, Token: l.Fence}, r); err != nil {
			t.Fatal(err)
		}
	}
	finished := report.Digest("sha256:" + strings.Repeat("a", 64))
	put(alpineReport(finished))
	failed := report.NewReport(report.Digest("sha256:"+strings.Repeat("b", 64)), report.StateIndexError)
	failed.Err = "fetch layer: 404"
	put(failed)
	running := report.NewReport(report.Digest("sha256:"+strings.Repeat("c", 64)), report.StateScanLayers)
	put(running)
	stored, err := st.Report(ctx, finished)
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(api.New(nil, st, nil, nil))
	defer srv.Close()
	check := sbomcheck.New(t)
	get := func(path string, h http.Header) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	path := func(d report.Digest) string { return "/api/v1/reports/" + string(d) + "/sbom" }

	etags := map[string]string{}
	for _, format := range sbom.Formats {
		t.Run(format, func(t *testing.T) {
			resp, body := get(path(finished)+"?format="+format, nil)
			ct, _ := sbom.MediaType(format)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ct {
				t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var want bytes.Buffer
			if err := sbom.Encode(ctx, &want, stored, format, sbom.Options{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, want.Bytes()) {
				t.Errorf("the answer is not what internal/sbom writes for the stored report:\n%s\n---\n%s", body, want.Bytes())
			}
			if format == sbom.FormatSPDXJSON {
				sbomcheck.CheckSPDX(t, stored, check.SPDX(t, body))
			} else {
				sbomcheck.CheckCycloneDX(t, stored, check.CycloneDX(t, body))
			}
			etag := resp.Header.Get("ETag")
			etags[format] = etag
			if resp, _ := get(path(finished)+"?format="+format, http.Header{"If-None-Match": {etag}}); resp.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: %d", resp.StatusCode)
			}
		})
	}
	if etags[sbom.FormatSPDXJSON] == "" || etags[sbom.FormatSPDXJSON] == etags[sbom.FormatCycloneDXJSON] {
		t.Errorf("ETags %v: want one per format", etags)
	}

	for _, tc := range []struct {
		name, path string
		status     int
		code       string
		retryAfter bool
	}{
		{"no format", path(finished), http.StatusBadRequest, "bad-request", false},
		{"empty format", path(finished) + "?format=", http.StatusBadRequest, "bad-request", false},
		{"unknown format", path(finished) + "?format=cyclonedx-xml", http.StatusBadRequest, "bad-request", false},
		{"two formats", path(finished) + "?format=spdx-json&format=spdx-json", http.StatusBadRequest, "bad-request", false},
		{"bad digest", "/api/v1/reports/sha256:ABC/sbom?format=spdx-json", http.StatusBadRequest, "bad-request", false},
		{"no report", path(report.Digest("sha256:"+strings.Repeat("d", 64))) + "?format=spdx-json", http.StatusNotFound, "not-found", false},
		{"index error", path(failed.Hash) + "?format=cyclonedx-json", http.StatusConflict, "index-error", false},
		{"not finished", path(running.Hash) + "?format=spdx-json", http.StatusConflict, "not-ready", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(tc.path, nil)
			var e struct{ Code, Message string }
			if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != tc.status || e.Code != tc.code || e.Message == "" {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
			if got := resp.Header.Get("Retry-After") != ""; got != tc.retryAfter {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		})
	}
}
