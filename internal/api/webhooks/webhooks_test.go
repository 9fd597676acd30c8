package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/logbuf"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// fakeDispatcher records what the handler asks for.
type fakeDispatcher struct {
	mu        sync.Mutex
	refs      []string
	manifests []*report.Manifest
	err       error
	// refuse lists the registry hosts AllowsRegistry refuses.
	refuse map[string]bool
}

func (f *fakeDispatcher) Index(ctx context.Context, m *report.Manifest) (*report.Report, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := m.Validate(); err != nil {
		return nil, false, err
	}
	if f.err != nil {
		return nil, false, f.err
	}
	f.manifests = append(f.manifests, m)
	return &report.Report{Hash: m.Hash, State: report.StateCheckManifest}, true, nil
}

func (f *fakeDispatcher) IndexReference(ctx context.Context, ref, platform string) ([]report.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.refs = append(f.refs, ref)
	_, d, _ := strings.Cut(ref, "@")
	return []report.Image{{Digest: report.Digest(d), Platform: "linux/amd64", State: report.StateCheckManifest, Queued: true}}, nil
}

func (f *fakeDispatcher) calls() (refs []string, manifests []*report.Manifest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.refs...), append([]*report.Manifest(nil), f.manifests...)
}

func (f *fakeDispatcher) AllowsRegistry(host string) bool { return !f.refuse[host] }

func (f *fakeDispatcher) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

const (
	testToken  = "0123456789abcdef-test-token"
	testSecret = "It's a Secret to Everybody, longer"
)

func testSecrets() map[Source]string {
	return map[Source]string{Distribution: testToken, Harbor: testToken, Quay: testToken, Zot: testToken, GHCR: testSecret}
}

func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

type request struct {
	method, path string
	header       map[string]string
	body         string
}

func do(t *testing.T, h http.Handler, rq request) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	r := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer is not JSON: %v: %q", err, w.Body.String())
		}
	}
	return w, out
}

func TestEndpoints(t *testing.T) {
	reg := devregistry.NewTestServer(t)
	l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": []byte("ID=alpine\n")})
	if err != nil {
		t.Fatal(err)
	}
	quayDigest, err := devregistry.PushLayers(context.Background(), reg.Ref("org/app:1.0"), l)
	if err != nil {
		t.Fatal(err)
	}
	var regs Registries
	if err := regs.Set("example.com, hub.harbor.com, harbor.dev, zot.example.com:5000=" + reg.Addr + ", quay.example.com=" + reg.Addr + ", ghcr.io=" + reg.Addr); err != nil {
		t.Fatal(err)
	}
	for _, tc := range endpointCases(reg.Addr + "/org/app@" + quayDigest.String()) {
		t.Run(tc.name, func(t *testing.T) { checkEndpoint(t, regs, reg.Addr, tc) })
	}
}

// endpointCase is a request of TestEndpoints and what it must give.
type endpointCase struct {
	name      string
	secrets   map[Source]string
	rq        request
	status    int
	code      string // the error code, or "" for a 2xx answer
	message   string // part of the message
	refs      []string
	manifests int
}

// endpointCases are the cases of TestEndpoints; quayRef is the reference
// the Quay tag resolves to.
func endpointCases(quayRef string) []endpointCase {
	bearer := map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/vnd.docker.distribution.events.v2+json"}
	distDoc := "example.com/library/test@sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf"
	ghcrHeaders := func(sig string) map[string]string {
		return map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "package", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-Hub-Signature-256": sig}
	}
	return []endpointCase{
		{name: "disabled source", secrets: map[Source]string{Harbor: testToken},
			rq:     request{path: "/webhooks/distribution", header: bearer, body: distributionV2Push},
			status: 404, code: "not-enabled", message: "STEVEDORE_WEBHOOK_DISTRIBUTION_TOKEN"},
		{name: "no Authorization", rq: request{path: "/webhooks/distribution", header: map[string]string{"Content-Type": "application/vnd.docker.distribution.events.v2+json"}, body: distributionV2Push},
			status: 401, code: "unauthorized", message: "missing Authorization header"},
		{name: "wrong token", rq: request{path: "/webhooks/distribution", header: map[string]string{"Authorization": "Bearer nope-nope-nope-nope", "Content-Type": "application/json"}, body: distributionV2Push},
			status: 401, code: "unauthorized", message: "do not match"},
		{name: "token of another source's length but not the same", rq: request{path: "/webhooks/harbor", header: map[string]string{"Authorization": strings.ToUpper(testToken), "Content-Type": "application/json"}, body: harborDefaultPush},
			status: 401, code: "unauthorized"},
		{name: "distribution v2 with bearer token", rq: request{path: "/webhooks/distribution", header: bearer, body: distributionV2Push},
			status: 202, refs: []string{distDoc}},
		{name: "distribution v1 with basic credentials", rq: request{path: "/webhooks/distribution", header: map[string]string{"Authorization": basic("registry", testToken), "Content-Type": "application/vnd.docker.distribution.events.v1+json"}, body: distributionV2Push},
			status: 202, refs: []string{distDoc}},
		{name: "distribution pull only: ignored", rq: request{path: "/webhooks/distribution", header: bearer, body: distributionV1Pull},
			status: 200},
		{name: "wrong content type", rq: request{path: "/webhooks/distribution", header: map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "text/plain"}, body: distributionV2Push},
			status: 415, code: "unsupported-media-type", message: `"text/plain"`},
		{name: "no content type", rq: request{path: "/webhooks/distribution", header: map[string]string{"Authorization": "Bearer " + testToken}, body: distributionV2Push},
			status: 415, code: "unsupported-media-type", message: "Content-Type missing"},
		{name: "oversized body", rq: request{path: "/webhooks/distribution", header: bearer, body: `{"events":[` + strings.Repeat(" ", 5000) + `]}`},
			status: 413, code: "too-large", message: "4096 bytes"},
		{name: "invalid JSON", rq: request{path: "/webhooks/distribution", header: bearer, body: `{"events": [}`},
			status: 400, code: "bad-request", message: "distribution payload: invalid JSON at byte 13"},
		{name: "unknown registry", rq: request{path: "/webhooks/distribution", header: bearer, body: distributionV1Pull[:0] + strings.ReplaceAll(strings.Replace(distributionV1Pull, `"pull"`, `"push"`, 1), "192.168.100.227:5000", "evil.example.net")},
			status: 403, code: "registry-not-allowed", message: `registry "evil.example.net" is not allowed`},
		{name: "harbor default with its raw Auth Header", rq: request{path: "/webhooks/harbor", header: map[string]string{"Authorization": testToken, "Content-Type": "application/json"}, body: harborDefaultPush},
			status: 202, refs: []string{"hub.harbor.com/test-webhook/debian@sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"}},
		{name: "harbor CloudEvents", rq: request{path: "/webhooks/harbor", header: map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/cloudevents+json"}, body: harborCloudEventsPush},
			status: 202, refs: []string{"harbor.dev/library/busybox@sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"}},
		{name: "harbor pull: ignored", rq: request{path: "/webhooks/harbor", header: map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/cloudevents+json"}, body: harborCloudEventsPull},
			status: 200},
		{name: "quay tag resolved to its digest", rq: request{path: "/webhooks/quay", header: map[string]string{"Authorization": basic("stevedore", testToken), "Content-Type": "application/json"}, body: `{"repository":"org/app","docker_url":"quay.example.com/org/app","updated_tags":["1.0"]}`},
			status: 202, refs: []string{quayRef}},
		{name: "zot binary event with its manifest: no registry call", rq: request{path: "/webhooks/zot", header: map[string]string{"Authorization": basic("zot", testToken), "Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Type": "zotregistry.image.updated", "Ce-Source": "zotregistry.dev", "Ce-Id": "1"}, body: zotImageUpdatedData()},
			status: 202, manifests: 1},
		{name: "zot image deleted: ignored", rq: request{path: "/webhooks/zot", header: map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json", "Ce-Type": "zotregistry.image.deleted"}, body: `{"name":"a"}`},
			status: 200},
		{name: "ghcr signed", rq: request{path: "/webhooks/ghcr", header: ghcrHeaders(sign(testSecret, []byte(ghcrPackagePublished))), body: ghcrPackagePublished},
			status: 202, manifests: 1},
		{name: "ghcr bad signature", rq: request{path: "/webhooks/ghcr", header: ghcrHeaders(sign("another secret entirely", []byte(ghcrPackagePublished))), body: ghcrPackagePublished},
			status: 401, code: "unauthorized", message: "does not match"},
		{name: "ghcr body changed after signing", rq: request{path: "/webhooks/ghcr", header: ghcrHeaders(sign(testSecret, []byte(ghcrPackagePublished))), body: strings.Replace(ghcrPackagePublished, "latest", "evil", 1)},
			status: 401, code: "unauthorized"},
		{name: "ghcr no signature", rq: request{path: "/webhooks/ghcr", header: ghcrHeaders(""), body: ghcrPackagePublished},
			status: 401, code: "unauthorized", message: "missing X-Hub-Signature-256"},
		{name: "ghcr malformed signature", rq: request{path: "/webhooks/ghcr", header: ghcrHeaders("sha1=abc"), body: ghcrPackagePublished},
			status: 401, code: "unauthorized", message: "want sha256="},
		{name: "ghcr npm: ignored", rq: request{path: "/webhooks/ghcr", header: ghcrHeaders(sign(testSecret, []byte(ghcrNpmPublished))), body: ghcrNpmPublished},
			status: 200},
		{name: "GET", rq: request{method: http.MethodGet, path: "/webhooks/distribution"}, status: 405, code: "method-not-allowed"},
		{name: "unknown source", rq: request{path: "/webhooks/dockerhub", header: bearer, body: "{}"}, status: 404, code: "not-found", message: "/webhooks/ghcr"},
	}
}

// checkEndpoint sends tc's request to a handler with the registries regs
// (the pull host regAddr) and checks the answer, what was dispatched, and
// that no secret is logged or answered.
func checkEndpoint(t *testing.T, regs Registries, regAddr string, tc endpointCase) {
	t.Helper()
	secrets := tc.secrets
	if secrets == nil {
		secrets = testSecrets()
	}
	logs := &logbuf.Buffer{}
	fd := &fakeDispatcher{}
	h := New(Config{Secrets: secrets, Registries: regs, ZotRegistry: "zot.example.com:5000", MaxBodySize: 4096}, fd, nil,
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	w, out := do(t, h, tc.rq)
	if w.Code != tc.status {
		t.Fatalf("HTTP %d, want %d: %s", w.Code, tc.status, w.Body)
	}
	if tc.code != "" || w.Code >= 300 {
		if out["code"] != tc.code && tc.code != "" {
			t.Errorf("code %v, want %q", out["code"], tc.code)
		}
		if msg, _ := out["message"].(string); !strings.Contains(msg, tc.message) {
			t.Errorf("message %q does not say %q", msg, tc.message)
		}
	}
	if w.Code == 401 && !strings.HasSuffix(tc.rq.path, "ghcr") && w.Header().Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	refs, manifests := fd.calls()
	if strings.Join(refs, " ") != strings.Join(tc.refs, " ") {
		t.Errorf("dispatcher got references %q, want %q", refs, tc.refs)
	}
	if len(manifests) != tc.manifests {
		t.Errorf("dispatcher got %d manifests, want %d", len(manifests), tc.manifests)
	}
	for _, m := range manifests {
		for _, l := range m.Layers {
			if !strings.HasPrefix(l.URI, "http://"+regAddr+"/v2/") {
				t.Errorf("layer URI %s is not on the pull host %s", l.URI, regAddr)
			}
		}
	}
	if w.Code == 200 {
		if ign, _ := out["ignored"].([]any); len(ign) == 0 {
			t.Errorf("200 without reasons: %s", w.Body)
		}
	}
	for _, s := range []string{testToken, testSecret} {
		if strings.Contains(logs.String(), s) || strings.Contains(w.Body.String(), s) {
			t.Fatalf("a secret is in the log or the answer:\n%s\n%s", logs, w.Body)
		}
	}
}

// TestRegistryAllowlistRefuses: an event whose pull host the dispatcher's
// registry allowlist refuses is answered 403, whatever the source, and
// nothing is queued (it was 200 "ignored", which a registry never sends
// again).
func TestRegistryAllowlistRefuses(t *testing.T) {
	var regs Registries
	if err := regs.Set("example.com, ghcr.io=ghcr.pull.example"); err != nil {
		t.Fatal(err)
	}
	bearer := map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/vnd.docker.distribution.events.v2+json"}
	ghcr := map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "package", "X-Hub-Signature-256": sign(testSecret, []byte(ghcrPackagePublished))}
	for _, tc := range []struct {
		name    string
		fd      *fakeDispatcher
		rq      request
		message string
	}{
		{"ghcr, refused before anything is asked", &fakeDispatcher{refuse: map[string]bool{"ghcr.pull.example": true}},
			request{path: "/webhooks/ghcr", header: ghcr, body: ghcrPackagePublished}, `registry "ghcr.io" (pulled from "ghcr.pull.example") is not allowed: add "ghcr.pull.example" to STEVEDORE_REGISTRY_ALLOWLIST`},
		{"distribution, refused before anything is asked", &fakeDispatcher{refuse: map[string]bool{"example.com": true}},
			request{path: "/webhooks/distribution", header: bearer, body: distributionV2Push}, `registry "example.com" is not allowed: add it to STEVEDORE_REGISTRY_ALLOWLIST`},
		{"ghcr, refused by the dispatcher", &fakeDispatcher{err: fmt.Errorf("layers[0].uri: %w", intake.ErrRegistryNotAllowed)},
			request{path: "/webhooks/ghcr", header: ghcr, body: ghcrPackagePublished}, "registry not allowed"},
		{"distribution, refused by the dispatcher", &fakeDispatcher{err: fmt.Errorf("reference: %w", intake.ErrRegistryNotAllowed)},
			request{path: "/webhooks/distribution", header: bearer, body: distributionV2Push}, "STEVEDORE_REGISTRY_ALLOWLIST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Config{Secrets: testSecrets(), Registries: regs}, tc.fd, nil, slog.New(slog.DiscardHandler), nil)
			w, out := do(t, h, tc.rq)
			if w.Code != http.StatusForbidden || out["code"] != "registry-not-allowed" {
				t.Fatalf("HTTP %d %s, want 403 registry-not-allowed", w.Code, w.Body)
			}
			if msg, _ := out["message"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("message %q does not say %q", msg, tc.message)
			}
			if refs, manifests := tc.fd.calls(); len(refs)+len(manifests) != 0 {
				t.Errorf("queued %q and %d manifests", refs, len(manifests))
			}
		})
	}
}

func TestCheckToken(t *testing.T) {
	for _, tc := range []struct {
		header string
		ok     bool
	}{
		{"Bearer " + testToken, true},
		{"bearer  " + testToken, true},
		{basic("anyone", testToken), true},
		{basic("", testToken), true},
		{testToken, true},
		{"", false},
		{"Bearer", false},
		{"Bearer " + testToken + "x", false},
		{basic(testToken, "x"), false},
		{"Basic !!!", false},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte(testToken)), false},
		{"Token " + testToken, false},
	} {
		if err := checkToken(tc.header, testToken); (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok=%v", tc.header, err, tc.ok)
		}
	}
}

func TestCheckSignature(t *testing.T) {
	// GitHub's documented example ("Validating webhook deliveries").
	const secret, body = "It's a Secret to Everybody", "Hello, World!"
	good := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if err := checkSignature(good, []byte(body), secret); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "sha256=zz", "sha256=757107ea", strings.Replace(good, "7571", "7572", 1)} {
		if err := checkSignature(bad, []byte(body), secret); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := checkSignature(good, []byte(body+"\n"), secret); err == nil {
		t.Error("a changed body was accepted")
	}
}

func TestRegistries(t *testing.T) {
	r, err := ParseRegistries(" Registry.Example.com , localhost:5000=registry.localhost:5000, https://harbor.example.com/ ,, ")
	if err != nil {
		t.Fatal(err)
	}
	for ev, want := range map[string]string{
		"registry.example.com":    "registry.example.com",
		"REGISTRY.example.com":    "registry.example.com",
		"localhost:5000":          "registry.localhost:5000",
		"registry.localhost:5000": "registry.localhost:5000",
		"harbor.example.com":      "harbor.example.com",
	} {
		if got, ok := r.PullHost(ev); !ok || got != want {
			t.Errorf("PullHost(%q) = %q, %v; want %q", ev, got, ok, want)
		}
	}
	for _, ev := range []string{"localhost:5001", "evil.example.com", "", "registry.example.com/x"} {
		if _, ok := r.PullHost(ev); ok {
			t.Errorf("PullHost(%q) allowed", ev)
		}
	}
	if got := r.String(); got != "harbor.example.com,localhost:5000=registry.localhost:5000,registry.example.com,registry.localhost:5000" {
		t.Errorf("String() = %q", got)
	}
	again, err := ParseRegistries(r.String())
	if err != nil || again.String() != r.String() {
		t.Errorf("round trip: %q %v", again.String(), err)
	}
	for _, bad := range []string{"a b", "host/path", "=x", "x=", "a=b,a=c", "user@host"} {
		if _, err := ParseRegistries(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	var zero Registries
	if _, ok := zero.PullHost("example.com"); ok || zero.Len() != 0 {
		t.Error("the zero value allows a registry")
	}
}

func TestConfigValidate(t *testing.T) {
	regs, _ := ParseRegistries("r.example.com")
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"nothing enabled", Config{}, nil},
		{"enabled with registries", Config{Secrets: testSecrets(), Registries: regs}, nil},
		{"enabled without registries", Config{Secrets: map[Source]string{Harbor: testToken}}, []string{"--webhook-registries", "STEVEDORE_WEBHOOK_HARBOR_TOKEN"}},
		{"short secret", Config{Secrets: map[Source]string{GHCR: "short"}, Registries: regs}, []string{"STEVEDORE_WEBHOOK_GHCR_SECRET: 5 characters"}},
		{"unknown source", Config{Secrets: map[Source]string{"dockerhub": testToken}, Registries: regs}, []string{`unknown source "dockerhub"`}},
		{"bad zot registry", Config{ZotRegistry: "a/b"}, []string{"--webhook-zot-registry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.cfg.Validate()
			all := fmt.Sprint(errs)
			if len(tc.want) == 0 && len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("%q does not say %q", all, w)
				}
			}
			if strings.Contains(all, testToken) || strings.Contains(all, "short\"") {
				t.Errorf("a secret is in the errors: %s", all)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	c := Config{RetryBase: time.Second, RetryMax: 30 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 50: 30 * time.Second} {
		for range 20 {
			got := c.backoff(n)
			if got < want*9/10 || got > want*11/10 {
				t.Fatalf("backoff(%d) = %s, want %s ± 10%%", n, got, want)
			}
		}
	}
}

// TestDeferredLookupIsRetried: a lookup that fails is stored with its error
// and attempt count, retried with backoff, given up after MaxAttempts, and
// deleted when a retry succeeds.
func TestDeferredLookupIsRetried(t *testing.T) {
	pool := pgtest.Pool(t)
	regs, _ := ParseRegistries("example.com")
	fd := &fakeDispatcher{err: errors.New("registry example.com: connection refused")}
	h := New(Config{Secrets: testSecrets(), Registries: regs, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, MaxAttempts: 3}, fd, pool, slog.New(slog.DiscardHandler), nil)
	post := func() *httptest.ResponseRecorder {
		w, _ := do(t, h, request{path: "/webhooks/distribution", header: map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/vnd.docker.distribution.events.v2+json"}, body: distributionV2Push})
		return w
	}
	row := func() (attempts int, lastErr string, givenUp bool) {
		t.Helper()
		err := pool.QueryRow(context.Background(), `SELECT attempts, last_error, given_up_at IS NOT NULL FROM webhook_pending WHERE reference = $1`,
			"example.com/library/test@sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf").Scan(&attempts, &lastErr, &givenUp)
		if err != nil {
			t.Fatalf("pending row: %v", err)
		}
		return
	}
	retry := func() bool {
		t.Helper()
		time.Sleep(40 * time.Millisecond) // past the backoff
		did, err := h.retryOne(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return did
	}

	w := post()
	var resp Response
	json.Unmarshal(w.Body.Bytes(), &resp)
	if w.Code != 202 || len(resp.Deferred) != 1 || !strings.Contains(resp.Deferred[0].Error, "connection refused") {
		t.Fatalf("HTTP %d %s, want 202 with the reference deferred", w.Code, w.Body)
	}
	if n, e, g := row(); n != 1 || !strings.Contains(e, "connection refused") || g {
		t.Fatalf("after the request: attempts %d, error %q, given up %v", n, e, g)
	}
	// A retry of the same event does not add a row or reset the schedule.
	post()
	if n, _, _ := row(); n != 1 {
		t.Fatalf("attempts %d after a repeated event", n)
	}
	fd.setErr(errors.New("registry example.com: HTTP 503"))
	if !retry() {
		t.Fatal("no row was due")
	}
	if n, e, g := row(); n != 2 || !strings.Contains(e, "HTTP 503") || g {
		t.Fatalf("after a failed retry: attempts %d, error %q, given up %v", n, e, g)
	}
	retry()
	if n, _, g := row(); n != 3 || !g {
		t.Fatalf("after the last attempt: attempts %d, given up %v", n, g)
	}
	if retry() {
		t.Fatal("a given-up row was retried")
	}
	// A new event for the reference starts it again; this time it works.
	post()
	if n, _, g := row(); n != 1 || g {
		t.Fatalf("after a new event: attempts %d, given up %v", n, g)
	}
	fd.setErr(nil)
	if !retry() {
		t.Fatal("no row was due")
	}
	var left int
	pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_pending`).Scan(&left)
	if left != 0 {
		t.Fatalf("%d rows left after a successful retry", left)
	}
	if refs, _ := fd.calls(); len(refs) != 1 {
		t.Fatalf("dispatcher got %q, want one reference", refs)
	}
}

// TestDeferredLookupWithoutADatabase: without a database the failure cannot
// be kept: 503, so that the registry sends the event again.
func TestDeferredLookupWithoutADatabase(t *testing.T) {
	regs, _ := ParseRegistries("example.com")
	fd := &fakeDispatcher{err: errors.New("down")}
	h2 := New(Config{Secrets: testSecrets(), Registries: regs}, fd, nil, slog.New(slog.DiscardHandler), nil)
	w, out := do(t, h2, request{path: "/webhooks/distribution", header: map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json"}, body: distributionV2Push})
	if w.Code != 503 || !strings.Contains(fmt.Sprint(out["message"]), "could not be kept") {
		t.Fatalf("HTTP %d %s, want 503", w.Code, w.Body)
	}
}
