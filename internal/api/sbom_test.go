package api_test

import (
	"bytes"
	"context"
	"encoding/json"
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
	path := func(d report.Digest) string { return "/api/v1/reports/" + string(d) + "/sbom" }

	etags := checkSBOMFormats(t, srv, stored, path(finished))
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
			a := get(t, srv, tc.path, nil)
			var e struct{ Code, Message string }
			if err := json.Unmarshal(a.body, &e); err != nil || a.status != tc.status || e.Code != tc.code || e.Message == "" {
				t.Fatalf("%d %s, want %d %s", a.status, a.body, tc.status, tc.code)
			}
			if got := a.header.Get("Retry-After") != ""; got != tc.retryAfter {
				t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
			}
		})
	}
}

// checkSBOMFormats gets stored's SBOM at path in every format, checks it
// is what internal/sbom writes for the report and valid, and that its ETag
// gives 304; it returns the ETags by format.
func checkSBOMFormats(t *testing.T, srv *httptest.Server, stored *report.Report, path string) map[string]string {
	check := sbomcheck.New(t)
	etags := map[string]string{}
	for _, format := range sbom.Formats {
		t.Run(format, func(t *testing.T) {
			a := get(t, srv, path+"?format="+format, nil)
			ct, _ := sbom.MediaType(format)
			if a.status != http.StatusOK || a.header.Get("Content-Type") != ct {
				t.Fatalf("%d %s: %s", a.status, a.header.Get("Content-Type"), a.body)
			}
			var want bytes.Buffer
			if err := sbom.Encode(context.Background(), &want, stored, format, sbom.Options{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.body, want.Bytes()) {
				t.Errorf("the answer is not what internal/sbom writes for the stored report:\n%s\n---\n%s", a.body, want.Bytes())
			}
			if format == sbom.FormatSPDXJSON {
				sbomcheck.CheckSPDX(t, stored, check.SPDX(t, a.body))
			} else {
				sbomcheck.CheckCycloneDX(t, stored, check.CycloneDX(t, a.body))
			}
			etag := a.header.Get("ETag")
			etags[format] = etag
			if a := get(t, srv, path+"?format="+format, http.Header{"If-None-Match": {etag}}); a.status != http.StatusNotModified {
				t.Errorf("If-None-Match: %d", a.status)
			}
		})
	}
	return etags
}
