package clairauth_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
	"github.com/stevedore-dev/stevedore/internal/api/apitest"
	"github.com/stevedore-dev/stevedore/internal/api/clairauth"
)

// psk is a pre-shared key as Quay's SECURITY_SCANNER_V4_PSK holds it.
const psk = "c3RldmVkb3JlLXRlc3Qta2V5LW9mLTMyLWJ5dGVzLWxvbmc="

var exempt = []string{"/healthz", "/metrics", "/webhooks/"}

func key(t testing.TB) []byte {
	t.Helper()
	k, err := clairauth.DecodeKey(psk)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// quayToken makes a token exactly as Quay's _sign_jwt does:
// jwt.encode({"iss": "quay", "exp": utcnow()+5min}, b64decode(psk), "HS256").
func quayToken(t testing.TB, k []byte, now time.Time) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, k, jwt.MapClaims{"iss": "quay", "exp": now.Add(5 * time.Minute).Unix()})
}

// clairToken makes a token as Clair's signer does for clairctl and for its
// own services: iat now, nbf and exp a minute either side.
func clairToken(t testing.TB, k []byte, iss string, now time.Time) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, k, jwt.MapClaims{"iss": iss, "iat": now.Unix(),
		"nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Minute).Unix()})
}

func sign(t testing.TB, m jwt.SigningMethod, k any, cl jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, cl).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// server serves handler behind the middleware on a real HTTP server; the
// handler answers 200 "next".
func server(t *testing.T, cfg clairauth.Config, log *slog.Logger) *httptest.Server {
	t.Helper()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "next") })
	h, err := clairauth.New(cfg, next, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status    int
	challenge string
	body      string
	err       apierr.Body
}

func do(t *testing.T, srv *httptest.Server, method, path string, auth ...string) answer {
	t.Helper()
	h := http.Header{}
	for _, a := range auth {
		h.Add("Authorization", a)
	}
	res, b := apitest.Do(t, srv.Client(), method, srv.URL+path, nil, h)
	a := answer{status: res.StatusCode, challenge: res.Header.Get("WWW-Authenticate"), body: string(b)}
	if res.StatusCode == http.StatusUnauthorized {
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("401 Content-Type %q", ct)
		}
		if err := json.Unmarshal(b, &a.err); err != nil {
			t.Errorf("401 body %q: %v", b, err)
		}
	}
	return a
}

func TestAuthenticate(t *testing.T) {
	k := key(t)
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	srv := server(t, clairauth.Config{Key: k, Issuers: clairauth.DefaultIssuers(), ClockSkew: clairauth.DefaultClockSkew,
		Exempt: exempt, Now: func() time.Time { return now }}, slog.New(slog.DiscardHandler))
	other := []byte("another-key-of-thirty-two-bytes!")
	for _, tc := range []authCase{
		{name: "quay's token", auth: []string{"Bearer " + quayToken(t, k, now)}},
		{name: "quay's token, DELETE", method: http.MethodDelete, path: "/indexer/api/v1/index_report/sha256:00", auth: []string{"Bearer " + quayToken(t, k, now)}},
		{name: "clairctl's token", auth: []string{"Bearer " + clairToken(t, k, "clairctl", now)}},
		{name: "clair's matcher", auth: []string{"Bearer " + clairToken(t, k, "clair-intraservice", now)}},
		{name: "scheme in lower case", auth: []string{"bearer " + quayToken(t, k, now)}},
		{name: "second header is the bearer", auth: []string{"Basic dTpw", "Bearer " + quayToken(t, k, now)}},
		{name: "expired within the skew", auth: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k, jwt.MapClaims{"iss": "quay", "exp": now.Add(-10 * time.Second).Unix()})}},
		{name: "not before, within the skew", auth: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k, jwt.MapClaims{"iss": "quay", "nbf": now.Add(10 * time.Second).Unix(), "exp": now.Add(time.Minute).Unix()})}},

		{name: "no token", want: "no bearer token", challenge: `Bearer realm="stevedore"`},
		{name: "no token, DELETE", method: http.MethodDelete, path: "/indexer/api/v1/index_report/sha256:00", want: "no bearer token"},
		{name: "basic auth", auth: []string{"Basic dTpw"}, want: "no bearer token"},
		{name: "empty bearer", auth: []string{"Bearer "}, want: "no bearer token"},
		{name: "bad signature", auth: []string{"Bearer " + quayToken(t, other, now)}, want: "signature does not verify", challenge: `error="invalid_token"`},
		{name: "wrong issuer", auth: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k, jwt.MapClaims{"iss": "mallory", "exp": now.Add(time.Minute).Unix()})},
			want: `issuer "mallory" is not accepted`},
		{name: "no issuer", auth: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k, jwt.MapClaims{"exp": now.Add(time.Minute).Unix()})}, want: "no iss claim"},
		{name: "expired", auth: []string{"Bearer " + quayToken(t, k, now.Add(-6*time.Minute))}, want: "token expired at 2026-12-03T09:59:00Z"},
		{name: "not yet valid", auth: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k, jwt.MapClaims{"iss": "quay", "nbf": now.Add(time.Minute).Unix(), "exp": now.Add(2 * time.Minute).Unix()})},
			want: "not valid before 2026-12-03T10:01:00Z"},
		{name: "issued in the future", auth: []string{"Bearer " + clairToken(t, k, "clairctl", now.Add(time.Minute))}, want: "issued in the future"},
		{name: "no expiry", auth: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k, jwt.MapClaims{"iss": "quay"})}, want: "no exp claim"},
		{name: "alg none", auth: []string{"Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"iss": "quay", "exp": now.Add(time.Minute).Unix()})},
			want: `signing algorithm "none" is not accepted`},
		{name: "HS512 with the key", auth: []string{"Bearer " + sign(t, jwt.SigningMethodHS512, k, jwt.MapClaims{"iss": "quay", "exp": now.Add(time.Minute).Unix()})},
			want: `signing algorithm "HS512" is not accepted`},
		{name: "malformed", auth: []string{"Bearer not-a-jwt"}, want: "malformed token"},
		{name: "huge", auth: []string{"Bearer " + strings.Repeat("a", 9000)}, want: "at most 8192"},

		{name: "health is exempt", path: "/healthz"},
		{name: "metrics are exempt", path: "/metrics"},
		{name: "webhooks are exempt", method: http.MethodPost, path: "/webhooks/distribution"},
		{name: "only the health path", path: "/healthzz", want: "no bearer token"},
		{name: "no way round through webhooks", path: "/webhooks/../indexer/api/v1/index_state", want: "no bearer token"},
		{name: "nor through a double slash", path: "/webhooks//x", want: "no bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAuth(t, srv, k, tc)
		})
	}
}

// authCase is a request of TestAuthenticate and the answer expected.
type authCase struct {
	name   string
	method string
	path   string
	auth   []string
	// want is "" for 200, else a substring of the 401's reason.
	want string
	// challenge is a substring of WWW-Authenticate on 401.
	challenge string
}

// checkAuth sends tc's request (GET /indexer/api/v1/index_state unless
// it says otherwise) and checks that it reaches the next handler, or is
// refused with the reason and challenge expected, never showing the key k.
func checkAuth(t *testing.T, srv *httptest.Server, k []byte, tc authCase) {
	t.Helper()
	method, path := tc.method, tc.path
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = "/indexer/api/v1/index_state"
	}
	a := do(t, srv, method, path, tc.auth...)
	if tc.want == "" {
		if a.status != http.StatusOK || a.body != "next" {
			t.Fatalf("%d %q, want 200 from the next handler", a.status, a.body)
		}
		return
	}
	if a.status != http.StatusUnauthorized {
		t.Fatalf("%d %q, want 401", a.status, a.body)
	}
	if a.err.Code != "unauthorized" || !strings.Contains(a.err.Message, tc.want) {
		t.Errorf("body %q, want code unauthorized and a message with %q", a.body, tc.want)
	}
	if !strings.HasPrefix(a.challenge, `Bearer realm="stevedore"`) || !strings.Contains(a.challenge, tc.challenge) {
		t.Errorf("WWW-Authenticate %q, want %q", a.challenge, tc.challenge)
	}
	for _, secret := range []string{psk, string(k)} {
		if strings.Contains(a.body, secret) || strings.Contains(a.challenge, secret) {
			t.Error("the answer shows the key")
		}
	}
}

// pyjwt finds a Python with PyJWT (Debian's python3-jwt, which
// scripts/test.sh installs): the library Quay signs with.
func pyjwt(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import jwt").Run() == nil {
			return path
		}
	}
	t.Fatal("no python3 with PyJWT: apt-get install python3-jwt")
	return ""
}

// TestQuayPyJWT makes tokens with PyJWT as Quay's util/secscan/v4/api.py
// does and sends them to a real server on the real clock.
func TestQuayPyJWT(t *testing.T) {
	py := pyjwt(t)
	srv := server(t, clairauth.Config{Key: key(t), Issuers: clairauth.DefaultIssuers(), ClockSkew: clairauth.DefaultClockSkew, Exempt: exempt}, slog.New(slog.DiscardHandler))
	const script = `
import base64, sys
from datetime import datetime, timedelta
import jwt
psk, iss, minutes, alg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
payload = {"iss": iss, "exp": datetime.utcnow() + timedelta(minutes=minutes)}
key = None if alg == "none" else base64.b64decode(psk)
print(jwt.encode(payload, key, algorithm=alg))
`
	for _, tc := range []struct {
		name, psk, iss, minutes, alg string
		want                         string // "" for 200, else part of the 401's reason
	}{
		{name: "as quay signs", psk: psk, iss: "quay", minutes: "5", alg: "HS256"},
		{name: "another key", psk: base64.StdEncoding.EncodeToString([]byte("not-the-pre-shared-key-of-quay!!")), iss: "quay", minutes: "5", alg: "HS256", want: "signature does not verify"},
		{name: "wrong issuer", psk: psk, iss: "quay-impostor", minutes: "5", alg: "HS256", want: `issuer "quay-impostor"`},
		{name: "expired", psk: psk, iss: "quay", minutes: "-5", alg: "HS256", want: "token expired"},
		{name: "alg none", psk: psk, iss: "quay", minutes: "5", alg: "none", want: `"none" is not accepted`},
		{name: "HS384", psk: psk, iss: "quay", minutes: "5", alg: "HS384", want: `"HS384" is not accepted`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(py, "-W", "ignore", "-c", script, tc.psk, tc.iss, tc.minutes, tc.alg)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("PyJWT: %v: %s", err, stderr.String())
			}
			a := do(t, srv, http.MethodPost, "/indexer/api/v1/index_report", "Bearer "+strings.TrimSpace(string(out)))
			if tc.want == "" {
				if a.status != http.StatusOK {
					t.Fatalf("%d %q, want 200", a.status, a.body)
				}
				return
			}
			if a.status != http.StatusUnauthorized || !strings.Contains(a.err.Message, tc.want) {
				t.Fatalf("%d %q, want 401 saying %q", a.status, a.body, tc.want)
			}
		})
	}
}

// Without a key, requests pass and the middleware says so once.
func TestOff(t *testing.T) {
	var logs bytes.Buffer
	srv := server(t, clairauth.Config{}, slog.New(slog.NewTextHandler(&logs, nil)))
	for range 3 {
		if a := do(t, srv, http.MethodDelete, "/indexer/api/v1/index_report/sha256:00"); a.status != http.StatusOK {
			t.Fatalf("%d %q, want 200", a.status, a.body)
		}
	}
	if n := strings.Count(logs.String(), "authentication is off"); n != 1 || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("%d warnings, want 1: %s", n, logs.String())
	}
}

func TestConfig(t *testing.T) {
	k := key(t)
	for _, tc := range []struct {
		name string
		cfg  clairauth.Config
		want string
	}{
		{"off needs nothing", clairauth.Config{}, ""},
		{"valid", clairauth.Config{Key: k, Issuers: []string{"quay"}}, ""},
		{"no issuers", clairauth.Config{Key: k}, "no accepted issuers"},
		{"empty issuer", clairauth.Config{Key: k, Issuers: []string{"quay", " "}}, "issuer 2 is empty"},
		{"skew", clairauth.Config{Key: k, Issuers: []string{"quay"}, ClockSkew: time.Hour}, "clock skew 1h0m0s"},
		{"negative skew", clairauth.Config{Key: k, Issuers: []string{"quay"}, ClockSkew: -time.Second}, "clock skew -1s"},
		{"exempt root", clairauth.Config{Key: k, Issuers: []string{"quay"}, Exempt: []string{"/"}}, `exempt path "/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := clairauth.New(tc.cfg, http.NotFoundHandler(), slog.New(slog.DiscardHandler))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDecodeKey(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // the decoded key; "" when an error is expected
		err      string
	}{
		{"quay's PSK", "c2VjcmV0", "secret", ""},
		{"a file's newline", "c2VjcmV0\n", "secret", ""},
		{"empty", "  \n", "", "empty"},
		{"not base64", "this is the secret!", "", "not standard base64"},
		{"unpadded", "c2VjcmV0MQ", "", "not standard base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := clairauth.DecodeKey(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				if in := strings.TrimSpace(tc.in); in != "" && strings.Contains(err.Error(), in) {
					t.Errorf("the error shows the key: %v", err)
				}
				return
			}
			if err != nil || string(k) != tc.want {
				t.Fatalf("%q %v, want %q", k, err, tc.want)
			}
		})
	}
}

// FuzzAuthorization sends any Authorization header: the answer is 200 or a
// 401 with a JSON reason and a Bearer challenge, never a crash.
func FuzzAuthorization(f *testing.F) {
	k := key(f)
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	f.Add("Bearer " + quayToken(f, k, now))
	f.Add("Bearer " + sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"iss": "quay"}))
	f.Add("Bearer e30.e30.")
	f.Add("bearer a.b.c")
	f.Add("Basic dTpw")
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "next") })
	h, err := clairauth.New(clairauth.Config{Key: k, Issuers: clairauth.DefaultIssuers(), ClockSkew: clairauth.DefaultClockSkew,
		Now: func() time.Time { return now }}, next, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, auth string) {
		req := httptest.NewRequest(http.MethodGet, "/indexer/api/v1/index_state", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if rec.Body.String() != "next" {
				t.Fatalf("200 not from the next handler: %q", rec.Body)
			}
		case http.StatusUnauthorized:
			var e apierr.Body
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" {
				t.Fatalf("401 body %q: %v", rec.Body, err)
			}
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
