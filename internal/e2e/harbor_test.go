package e2e_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/api/apitest"
	"github.com/stevedore-dev/stevedore/internal/api/clairauth"
	"github.com/stevedore-dev/stevedore/internal/api/harbor"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/sbomcheck"
	"github.com/stevedore-dev/stevedore/report"
)

// robotAuth makes the registry demand a Harbor robot account's basic
// credentials (as Harbor's core does on /v2/, src/server/middleware/
// security/robot.go) once on is set, and counts the requests refused.
type robotAuth struct {
	user, pass string
	on         atomic.Bool
	refused    atomic.Int64
}

func (a *robotAuth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.on.Load() {
			if u, p, ok := r.BasicAuth(); !ok || u != a.user || p != a.pass {
				a.refused.Add(1)
				w.Header().Set("WWW-Authenticate", `Basic realm="harbor"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// TestHarborScanner registers Stevedore as Harbor would (its token, the
// base URL .../harbor) on a node with Clair's JWT authentication on, and
// plays Harbor's scan jobs for two images that share their base layer, in
// a registry that takes only a robot account's basic credentials: each is
// read and queued with those credentials, indexed by the real pipeline
// (JetStream, Postgres, workers), polled as Harbor polls (302 and
// Refresh-After), and its SBOM served in both media types. The shared
// layer is fetched from the registry once; the credentials show nowhere in
// the database.
func TestHarborScanner(t *testing.T) {
	const token = "harbor-e2e-registration-token"
	auth := &robotAuth{user: "robot$library+stevedore-8c1d", pass: "robot-e2e-secret-q81Z"}
	h := newHarness(t, devregistry.WithMiddleware(auth.middleware))
	cfg := h.config(2, true)
	cfg.Harbor = harbor.Config{Token: token, RefreshAfter: time.Second}
	cfg.Auth = clairauth.Config{Key: []byte("e2e-harbor-test-key-of-32-bytes!"), Issuers: clairauth.DefaultIssuers(), ClockSkew: clairauth.DefaultClockSkew}
	h.start(cfg)

	base := map[string][]byte{
		"etc/os-release":       fixture(t, "osrelease/trivy_alpine-310_os-release"),
		"lib/apk/db/installed": fixture(t, "apk/trivy_alpine-310_installed"),
	}
	one := h.push("library/app-one:1", base, map[string][]byte{"app/node_modules/cowsay/package.json": fixture(t, "npm/syft_cowsay_package.json")})
	two := h.push("library/app-two:1", base, map[string][]byte{"app/node_modules/@actions/core/package.json": fixture(t, "npm/syft_actions-core_package.json")})
	if one.Layers[0].Hash != two.Layers[0].Hash {
		t.Fatal("the images do not share their base layer")
	}
	auth.on.Store(true)
	h.reg.Counter().Reset()

	// Stevedore's own API wants Clair's JWT; the Harbor API its token.
	if a := h.do("GET", "/api/v1/partial", nil, nil); a.status != http.StatusUnauthorized {
		t.Fatalf("native API without a JWT: HTTP %d", a.status)
	}
	hc := &harborCaller{base: h.api.URL + harbor.Prefix, token: token}
	if a := hc.call(t, "GET", "/api/v1/metadata", http.Header{"Accept": {harbor.MimeMetadata}}, nil); a.status != http.StatusOK {
		t.Fatalf("metadata: HTTP %d %s", a.status, a.body)
	}
	authz := "Basic " + base64.StdEncoding.EncodeToString([]byte(auth.user+":"+auth.pass))
	check := sbomcheck.New(t)
	var wg sync.WaitGroup
	for _, img := range []struct {
		repo string
		m    *report.Manifest
	}{{"library/app-one", one}, {"library/app-two", two}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scanWithHarbor(t, h, hc, check, authz, img.repo, img.m)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Each layer was fetched once: the shared one for one image only.
	for _, l := range append(one.Layers, two.Layers[1]) {
		if n := h.reg.Counter().BlobFetches(string(l.Hash)); n != 1 {
			t.Errorf("layer %s fetched %d times, want 1", l.Hash, n)
		}
	}
	if n := auth.refused.Load(); n != 0 {
		t.Errorf("the registry refused %d requests: credentials not sent", n)
	}
	if n := h.count(`SELECT count(*) FROM index_report WHERE report::text LIKE '%' || $1 || '%' OR coalesce(job::text, '') LIKE '%' || $1 || '%' OR coalesce(job::text, '') LIKE '%' || $2 || '%'`,
		auth.pass, strings.TrimPrefix(authz, "Basic ")); n != 0 {
		t.Errorf("%d stored reports hold the robot's credentials", n)
	}
}

// scanWithHarbor asks for a scan of m in repo through the Harbor API,
// with the robot's authorization, polls for its SPDX and CycloneDX
// reports and checks each against the stored report.
func scanWithHarbor(t *testing.T, h *harness, hc *harborCaller, check *sbomcheck.Checker, authz, repo string, m *report.Manifest) {
	body, _ := json.Marshal(map[string]any{
		"registry": map[string]any{"url": h.reg.URL(), "authorization": authz, "insecure": true},
		"artifact": map[string]any{"repository": repo, "tag": "1", "digest": string(m.Hash), "mime_type": harbor.MimeDockerManifest},
		"enabled_capabilities": []any{map[string]any{"type": "sbom", "produces_mime_types": []string{harbor.MimeSBOMReport},
			"parameters": map[string]any{"sbom_media_types": []string{harbor.MediaTypeSPDX, harbor.MediaTypeCycloneDX}}}},
	})
	a := hc.call(t, "POST", "/api/v1/scan", http.Header{"Content-Type": {"application/vnd.scanner.adapter.scan.request+json; version=1.0"},
		"Accept": {harbor.MimeScanResponse}}, body)
	if a.status != http.StatusAccepted {
		t.Errorf("%s: scan: HTTP %d %s", repo, a.status, a.body)
		return
	}
	var sr harbor.ScanResponse
	if err := json.Unmarshal(a.body, &sr); err != nil {
		t.Error(err)
		return
	}
	for _, mt := range []string{harbor.MediaTypeSPDX, harbor.MediaTypeCycloneDX} {
		rep := hc.poll(t, sr.ID, mt)
		if rep == nil {
			return
		}
		if rep.MediaType != mt || rep.Artifact.Digest != string(m.Hash) {
			t.Errorf("%s: report %s %+v", repo, rep.MediaType, rep.Artifact)
		}
		stored := h.wait(m.Hash)
		if mt == harbor.MediaTypeSPDX {
			sbomcheck.CheckSPDX(t, stored, check.SPDX(t, rep.SBOM))
		} else {
			sbomcheck.CheckCycloneDX(t, stored, check.CycloneDX(t, rep.SBOM))
		}
		for _, purl := range []string{"pkg:apk/alpine/musl@", "pkg:npm/"} {
			if !bytes.Contains(rep.SBOM, []byte(purl)) {
				t.Errorf("%s: the %s SBOM has no %s package", repo, mt, purl)
			}
		}
	}
}

// harborCaller calls the scanner API as Harbor's client does
// (src/pkg/scan/rest/v1/client.go): a 5-second timeout, redirects not
// followed, the registration's bearer token.
type harborCaller struct{ base, token string }

func (c *harborCaller) call(t *testing.T, method, path string, header http.Header, body []byte) answer {
	t.Helper()
	h := http.Header{}
	for k, v := range header {
		h[k] = v
	}
	h.Set("Authorization", "Bearer "+c.token)
	hc := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, b := apitest.Do(t, hc, method, c.base+path, bytes.NewReader(body), h)
	return answer{resp.StatusCode, resp.Header, b}
}

// poll asks for the report as Harbor's scan job does (src/pkg/scan/job.go):
// again after Refresh-After seconds (read as an 8-bit integer) on 302,
// until 200, any other answer being a failure, for at most a minute here
// (Harbor: 30).
func (c *harborCaller) poll(t *testing.T, id, mediaType string) *harbor.SBOMReport {
	deadline := time.Now().Add(time.Minute)
	for polls := 0; time.Now().Before(deadline); polls++ {
		a := c.call(t, "GET", "/api/v1/scan/"+id+"/report?sbom_media_type="+url.QueryEscape(mediaType), http.Header{"Accept": {harbor.MimeSBOMReport}}, nil)
		switch a.status {
		case http.StatusFound:
			s, err := strconv.ParseInt(a.header.Get("Refresh-After"), 10, 8)
			if err != nil {
				t.Errorf("Refresh-After %q: %v", a.header.Get("Refresh-After"), err)
				return nil
			}
			time.Sleep(time.Duration(s) * time.Second)
		case http.StatusOK:
			rep := new(harbor.SBOMReport)
			if err := json.Unmarshal(a.body, rep); err != nil {
				t.Error(err)
				return nil
			}
			return rep
		default:
			t.Errorf("report: HTTP %d %s", a.status, a.body)
			return nil
		}
	}
	t.Errorf("report %s not ready within a minute", mediaType)
	return nil
}
