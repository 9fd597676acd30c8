package harbor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/api/apitest"
	"github.com/stevedore-dev/stevedore/internal/api/harbor"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/internal/testing/natstest"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

const (
	token      = "harbor-registration-token-0123456789"
	robotName  = "robot$library+stevedore-2b1f6c"
	robotPass  = "robot-secret-Xk29aLq0"
	stateOfSet = "harbor-test-state"
)

var robotBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte(robotName+":"+robotPass))

// harborToken is a token of Harbor's token service, as its scan job sends
// it with the Bearer authorization type (src/pkg/scan/job.go
// makeBearerAuthorization).
const harborToken = "eyJhbGciOiJSUzI1NiJ9.harbor-pull-token.c2lnbmF0dXJl"

// registryGate makes a registry take only a robot account's basic
// credentials or Harbor's pull token, as Harbor's core does on /v2/
// (src/server/middleware/security/robot.go, v2_token.go), once on is set
// (images are pushed before); slow holds manifest requests for 2 seconds.
type registryGate struct {
	on, slow atomic.Bool
}

func (g *registryGate) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.on.Load() {
			u, p, basic := r.BasicAuth()
			if !(basic && u == robotName && p == robotPass) && r.Header.Get("Authorization") != "Bearer "+harborToken {
				w.Header().Set("WWW-Authenticate", `Basic realm="harbor"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return
			}
		}
		if g.slow.Load() && strings.Contains(r.URL.Path, "/manifests/") {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// syncBuffer collects the logs, to check they show no secret.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// world is a dispatcher on Postgres and JetStream (no worker: tests write
// the reports a worker would), a registry behind basic auth with two
// images, and the API with the Harbor scanner API enabled.
type world struct {
	t      *testing.T
	st     *postgres.Store
	js     *natstest.Server
	reg    *devregistry.Server
	srv    *httptest.Server
	logs   *syncBuffer
	d      *intake.Dispatcher
	alpine *report.Manifest
	other  *report.Manifest
	harbor *harborClient
	k      *contract
	gate   registryGate
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, logs: &syncBuffer{}, k: loadContract(t)}
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w.st = postgres.New(pgtest.Pool(t))
	w.js = natstest.Start(t)
	if _, err := queue.EnsureStream(ctx, w.js.JS, queue.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	w.d = intake.New(w.st, queue.NewPublisher(w.js.JS, nil), nil, stateOfSet, log)
	w.reg = devregistry.NewTestServer(t, devregistry.WithMiddleware(w.gate.middleware))
	w.alpine = w.push("library/alpine:3.10", map[string][]byte{
		"etc/os-release":       read(t, "osrelease/trivy_alpine-310_os-release"),
		"lib/apk/db/installed": read(t, "apk/trivy_alpine-310_installed"),
	})
	w.other = w.push("library/other:1", map[string][]byte{"etc/os-release": read(t, "osrelease/claircore_alpine-3.16_os-release")})
	w.gate.on.Store(true)
	w.srv = httptest.NewServer(api.New(w.d, w.st, log, nil, api.WithHarbor(harbor.Config{Token: token})))
	t.Cleanup(w.srv.Close)
	w.harbor = newHarborClient(w.srv.URL+harbor.Prefix, token)
	return w
}

func read(t *testing.T, fixture string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, fixture))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *world) push(repoTag string, layers ...map[string][]byte) *report.Manifest {
	w.t.Helper()
	var ls []v1.Layer
	for _, files := range layers {
		l, err := devregistry.LayerFromFiles(files)
		if err != nil {
			w.t.Fatal(err)
		}
		ls = append(ls, l)
	}
	h, err := devregistry.PushLayers(context.Background(), w.reg.Ref(repoTag), ls...)
	if err != nil {
		w.t.Fatal(err)
	}
	m := &report.Manifest{Hash: report.Digest(h.String())}
	for _, l := range ls {
		d, _ := l.Digest()
		m.Layers = append(m.Layers, &report.Layer{Hash: report.Digest(d.String())})
	}
	return m
}

// write stores r as a worker's final write would.
func (w *world) write(r *report.Report) {
	w.t.Helper()
	ctx := context.Background()
	l, err := leases.New(w.st.Pool(), "test", leases.WithTTL(time.Minute)).Acquire(ctx, string(r.Hash))
	if err != nil {
		w.t.Fatal(err)
	}
	defer l.Release(ctx)
	if err := w.st.FinishManifest(ctx, postgres.Fence{Digest: r.Hash, Token: l.Fence}, r, nil, nil); err != nil {
		w.t.Fatal(err)
	}
}

// finished is the report a worker would write for the alpine image.
func finished(m *report.Manifest) *report.Report {
	r := report.NewReport(m.Hash, report.StateIndexFinished)
	r.Success = true
	r.ScannerState = stateOfSet
	r.Distributions["1"] = &report.Distribution{ID: "1", DID: "alpine", Name: "Alpine Linux", VersionID: "3.10.9", PrettyName: "Alpine Linux v3.10"}
	for i, p := range [][2]string{{"musl", "1.1.22-r3"}, {"busybox", "1.30.1-r2"}} {
		id := strconv.Itoa(i + 1)
		r.Packages[id] = &report.Package{ID: id, Name: p[0], Version: p[1], Kind: report.KindBinary, Arch: "x86_64",
			Source: &report.Package{Name: p[0], Version: p[1], Kind: report.KindSource}, PURL: "pkg:apk/alpine/" + p[0] + "@" + p[1] + "?arch=x86_64"}
		r.Environments[id] = []*report.Environment{{PackageDB: "lib/apk/db/installed", IntroducedIn: m.Layers[0].Hash, DistributionID: "1"}}
	}
	return r
}

// harborClient calls the scanner API as Harbor's client does
// (goharbor/harbor src/pkg/scan/rest/v1/client.go and spec.go): a 5-second
// timeout, redirects not followed, "Authorization: Bearer <token>" from the
// registration (src/pkg/scan/rest/auth/bearer_auth.go), the Accept and
// Content-Type headers of spec.go, the report's query as the sbom handler
// builds it (src/pkg/scan/sbom/sbom.go URLParameter).
type harborClient struct {
	base, token string
	hc          *http.Client
}

func newHarborClient(base, token string) *harborClient {
	return &harborClient{base: base, token: token, hc: &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (c *harborClient) do(t *testing.T, method, path string, header http.Header, body []byte) answer {
	t.Helper()
	h := http.Header{}
	for k, v := range header {
		h[k] = v
	}
	if _, set := header["Authorization"]; !set && c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	resp, b := apitest.Do(t, c.hc, method, c.base+path, bytes.NewReader(body), h)
	return answer{resp.StatusCode, resp.Header, b}
}

func (c *harborClient) metadata(t *testing.T) answer {
	return c.do(t, "GET", "/api/v1/metadata", http.Header{"Accept": {harbor.MimeMetadata}}, nil)
}

func (c *harborClient) submit(t *testing.T, body []byte) answer {
	return c.do(t, "POST", "/api/v1/scan", http.Header{
		"Content-Type": {"application/vnd.scanner.adapter.scan.request+json; version=1.0"},
		"Accept":       {harbor.MimeScanResponse},
	}, body)
}

func (c *harborClient) report(t *testing.T, id, mediaType string) answer {
	return c.do(t, "GET", "/api/v1/scan/"+id+"/report?sbom_media_type="+url.QueryEscape(mediaType),
		http.Header{"Accept": {harbor.MimeSBOMReport}}, nil)
}

// harborRequest is a ScanRequest as Harbor marshals it (its
// src/pkg/scan/rest/v1/models.go, with the fields it sends beyond the
// spec: registry.insecure, artifact.size), the way its scan job fills it
// for the sbom capability (src/pkg/scan/job.go ExtractScanReq and the sbom
// handler's RequestProducesMineTypes and RequestParameters).
func harborRequest(regURL, authz, repo, tag string, d report.Digest, mediaTypes ...string) []byte {
	if len(mediaTypes) == 0 {
		mediaTypes = []string{harbor.MediaTypeSPDX}
	}
	b, _ := json.Marshal(map[string]any{
		"registry": map[string]any{"url": regURL, "authorization": authz, "insecure": false},
		"artifact": map[string]any{"repository": repo, "tag": tag, "digest": string(d),
			"mime_type": harbor.MimeDockerManifest, "size": 1234},
		"enabled_capabilities": []any{map[string]any{
			"type":                "sbom",
			"produces_mime_types": []string{harbor.MimeSBOMReport},
			"parameters":          map[string]any{"sbom_media_types": mediaTypes},
		}},
	})
	return b
}

// refreshAfter reads Refresh-After as Harbor's client does: an 8-bit
// integer, else its default of 5.
func refreshAfter(t *testing.T, h http.Header) int {
	t.Helper()
	v := h.Get("Refresh-After")
	i, err := strconv.ParseInt(v, 10, 8)
	if err != nil {
		t.Fatalf("Refresh-After %q: Harbor's client cannot read it (%v)", v, err)
	}
	return int(i)
}

func (w *world) noSecrets(t *testing.T, where string, b []byte) {
	t.Helper()
	for _, s := range []string{robotPass, robotBasic, strings.TrimPrefix(robotBasic, "Basic "), token, harborToken} {
		if bytes.Contains(b, []byte(s)) {
			t.Fatalf("%s shows a secret: %s", where, b)
		}
	}
}

func errorMessage(t *testing.T, b []byte) string {
	t.Helper()
	var e harbor.ErrorResponse
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("not an ErrorResponse with a message: %s", b)
	}
	return e.Error.Message
}

func id(t *testing.T, a answer) string {
	t.Helper()
	var r harbor.ScanResponse
	if err := json.Unmarshal(a.body, &r); err != nil || r.ID == "" {
		t.Fatalf("scan response: %s", a.body)
	}
	return r.ID
}

// job is the job published for d, as a worker will receive it.
func (w *world) job(t *testing.T, d report.Digest) *queue.Job {
	t.Helper()
	s, err := w.js.JS.Stream(context.Background(), queue.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(context.Background(), queue.JobSubject(d))
	if err != nil {
		t.Fatalf("no job for %s: %v", d, err)
	}
	j, err := queue.Decode(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	return j
}
