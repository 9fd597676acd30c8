package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
	"github.com/stevedore-dev/stevedore/internal/api/apitest"
	"github.com/stevedore-dev/stevedore/internal/api/clairauth"
	"github.com/stevedore-dev/stevedore/internal/api/clairproxy"
	"github.com/stevedore-dev/stevedore/report"
)

// clairPSK is a pre-shared key as Quay's SECURITY_SCANNER_V4_PSK and Clair's
// auth.psk.key hold it.
const clairPSK = "ZTJlLXByZS1zaGFyZWQta2V5LW9mLXRoaXJ0eS10d28tYnl0ZXM="

// TestClairAuthentication runs a dispatcher with a pre-shared key and a
// Clair matcher (a real HTTP server standing in for it): Clair's paths and
// Stevedore's own need a JWT made as Quay makes it; health and webhooks (with
// their own secrets) do not; /matcher/ gets the token passed through.
func TestClairAuthentication(t *testing.T) {
	h := newHarness(t)
	key, err := clairauth.DecodeKey(clairPSK)
	if err != nil {
		t.Fatal(err)
	}
	matcher := newRecordingMatcher(t)
	cfg := h.webhookConfig(1)
	cfg.Auth = clairauth.Config{Key: key, Issuers: clairauth.DefaultIssuers(), ClockSkew: clairauth.DefaultClockSkew}
	cfg.Clair = clairproxy.Config{MatcherURL: matcher.URL}
	h.start(cfg)
	c := &clairCaller{t: t, h: h}

	m := h.push("auth/direct:v1", map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("curl")})
	manifest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	checkRefusedBeforeAnything(t, h, c, matcher, key, m, manifest)
	checkQuaySequence(t, h, c, matcher, key, m, manifest)

	// Health and webhooks need no JWT; webhooks check their own secret.
	if status, body, _ := c.call(http.MethodGet, "/healthz", "", ""); status != http.StatusOK {
		t.Errorf("/healthz: %d %q", status, body)
	}
	p := h.pushImage("auth/hooked", "v1", "bash")
	if status, out := h.post("/webhooks/distribution", distHeaders(eventsV2), envelope(distributionEvent(h.reg.Addr, p, "push", false))); status/100 != 2 {
		t.Errorf("webhook with its own token: %d %v", status, out)
	}
	h.wait(p.digest)
}

// checkRefusedBeforeAnything sends requests without a valid token: each is
// refused before anything is done, so no report of m exists after them and
// the matcher got none.
func checkRefusedBeforeAnything(t *testing.T, h *harness, c *clairCaller, matcher *recordingMatcher, key []byte, m *report.Manifest, manifest []byte) {
	for _, tc := range []struct {
		name, method, path, body, auth, reason string
	}{
		{"state without a token", http.MethodGet, "/indexer/api/v1/index_state", "", "", "no bearer token"},
		{"index without a token", http.MethodPost, "/indexer/api/v1/index_report", string(manifest), "", "no bearer token"},
		{"index with another key", http.MethodPost, "/indexer/api/v1/index_report", string(manifest), signClaims(t, "quay", []byte("not-the-pre-shared-key-at-all!!!")), "signature does not verify"},
		{"index by another issuer", http.MethodPost, "/indexer/api/v1/index_report", string(manifest), signClaims(t, "mallory", key), `issuer "mallory"`},
		{"native index without a token", http.MethodPost, "/api/v1/index", `{"reference":"` + h.reg.Ref("auth/direct:v1") + `"}`, "", "no bearer token"},
		{"matcher without a token", http.MethodGet, "/matcher/api/v1/vulnerability_report/" + string(m.Hash), "", "", "no bearer token"},
	} {
		status, body, hdr := c.call(tc.method, tc.path, tc.body, tc.auth)
		checkRefused(t, tc.name, status, body, hdr, tc.reason)
	}
	if n := h.count(`SELECT count(*) FROM index_report WHERE manifest_hash = $1`, string(m.Hash)); n != 0 {
		t.Fatalf("%d reports after refused requests", n)
	}
	if got := matcher.calls(); len(got) != 0 {
		t.Fatalf("the matcher got refused requests: %q", got)
	}
}

// checkQuaySequence runs Quay's sequence with Quay's token: index m, read
// its report (also as Clair's matcher), its vulnerability report through
// the matcher, the notifier, and delete it (refused without a token).
func checkQuaySequence(t *testing.T, h *harness, c *clairCaller, matcher *recordingMatcher, key []byte, m *report.Manifest, manifest []byte) {
	quay := signClaims(t, "quay", key)
	reportPath := "/indexer/api/v1/index_report/" + string(m.Hash)

	if status, body, _ := c.call(http.MethodGet, "/indexer/api/v1/index_state", "", quay); status != http.StatusOK {
		t.Fatalf("index_state with Quay's token: %d %q", status, body)
	}
	if status, body, _ := c.call(http.MethodPost, "/indexer/api/v1/index_report", string(manifest), quay); status/100 != 2 {
		t.Fatalf("index_report with Quay's token: %d %q", status, body)
	}
	h.wait(m.Hash)
	if status, body, _ := c.call(http.MethodGet, reportPath, "", quay); status != http.StatusOK {
		t.Fatalf("GET the report with Quay's token: %d %q", status, body)
	}
	// Clair's matcher reads reports with its own issuer.
	if status, body, _ := c.call(http.MethodGet, reportPath, "", signClaims(t, "clair-intraservice", key)); status != http.StatusOK {
		t.Fatalf("GET the report as Clair's matcher: %d %q", status, body)
	}

	// The matcher's path goes to the matcher with Quay's token.
	status, body, _ := c.call(http.MethodGet, "/matcher/api/v1/vulnerability_report/"+string(m.Hash), "", quay)
	if status != http.StatusOK || !strings.Contains(body, "from the matcher") {
		t.Fatalf("vulnerability_report: %d %q", status, body)
	}
	if got, want := matcher.calls(), []string{"GET /matcher/api/v1/vulnerability_report/" + string(m.Hash) + " " + quay}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("the matcher got %q, want %q", got, want)
	}
	// No notifier is configured.
	status, body, _ = c.call(http.MethodGet, "/notifier/api/v1/notification/5f8c6a0e-2f8f-4c0b-9a8e-3f9f0b1d2c3e", "", quay)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "--clair-notifier-url") {
		t.Errorf("notifier: %d %q, want 503 naming --clair-notifier-url", status, body)
	}

	// DELETE needs the token too.
	status, body, hdr := c.call(http.MethodDelete, reportPath, "", "")
	checkRefused(t, "delete without a token", status, body, hdr, "no bearer token")
	if n := h.count(`SELECT count(*) FROM index_report WHERE manifest_hash = $1`, string(m.Hash)); n != 1 {
		t.Fatalf("%d reports after a refused delete, want 1", n)
	}
	if status, body, _ := c.call(http.MethodDelete, reportPath, "", quay); status/100 != 2 {
		t.Fatalf("delete with Quay's token: %d %q", status, body)
	}
}

// recordingMatcher is a Clair matcher that answers every request with the
// same report, and records each request's method, path and Authorization.
type recordingMatcher struct {
	*httptest.Server
	mu  sync.Mutex
	got []string // "METHOD path Authorization"
}

func newRecordingMatcher(t *testing.T) *recordingMatcher {
	m := &recordingMatcher{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.got = append(m.got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		m.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"manifest_hash":"from the matcher"}`)
	}))
	t.Cleanup(m.Close)
	return m
}

// calls are the requests the matcher got so far.
func (m *recordingMatcher) calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.got...)
}

// signClaims signs a token of issuer iss with key k, as Quay's
// util/secscan/v4/api.py _sign_jwt, and returns its Authorization.
func signClaims(t *testing.T, iss string, k []byte) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": iss, "exp": time.Now().Add(5 * time.Minute).Unix()}).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

// clairCaller sends requests to the harness's API.
type clairCaller struct {
	t *testing.T
	h *harness
}

// call sends a request with auth as its Authorization (when given) and
// returns the answer's status, body and header.
func (c *clairCaller) call(method, path, body, auth string) (int, string, http.Header) {
	t := c.t
	t.Helper()
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	res, b := apitest.Do(t, http.DefaultClient, method, c.h.api.URL+path, strings.NewReader(body), h)
	return res.StatusCode, string(b), res.Header
}

// checkRefused checks that an answer is a 401 whose message says reason,
// with a Bearer challenge.
func checkRefused(t *testing.T, what string, status int, body string, hdr http.Header, reason string) {
	t.Helper()
	var e apierr.Body
	if status != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || e.Code != "unauthorized" || !strings.Contains(e.Message, reason) {
		t.Errorf("%s: %d %q, want 401 saying %q", what, status, body, reason)
	}
	if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer ") {
		t.Errorf("%s: WWW-Authenticate %q", what, hdr.Get("WWW-Authenticate"))
	}
}
