package clairproxy_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
	"github.com/stevedore-dev/stevedore/internal/api/apitest"
	"github.com/stevedore-dev/stevedore/internal/api/clairproxy"
)

// seen is what a stand-in service received.
type seen struct {
	Method, Path, RawPath, Query, Body, Authorization, ForwardedFor, Host string
}

// standIn is a real HTTP server playing a Clair service: it records each
// request and answers 200 with a JSON body naming itself, or 404 for
// /notfound paths.
type standIn struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	got  []seen
}

func newStandIn(t *testing.T, name string) *standIn {
	s := &standIn{name: name}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("%s: body: %v", name, err)
		}
		s.mu.Lock()
		s.got = append(s.got, seen{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.RawQuery, Body: string(b),
			Authorization: r.Header.Get("Authorization"), ForwardedFor: r.Header.Get("X-Forwarded-For"), Host: r.Host})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"`+name+`-etag"`)
		if strings.HasSuffix(r.URL.Path, "/notfound") {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"code":"not-found","message":"from `+name+`"}`)
			return
		}
		io.WriteString(w, `{"from":"`+name+`"}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) last(t *testing.T) seen {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		t.Fatalf("the %s got no request", s.name)
	}
	return s.got[len(s.got)-1]
}

func (s *standIn) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func proxy(t *testing.T, cfg clairproxy.Config) *httptest.Server {
	t.Helper()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "indexer "+r.URL.Path) })
	h, err := clairproxy.Mount(cfg, next, clairproxy.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, srv *httptest.Server, method, target, body, auth string) (*http.Response, string) {
	t.Helper()
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	res, b := apitest.Do(t, srv.Client(), method, srv.URL+target, strings.NewReader(body), h)
	return res, string(b)
}

func TestProxy(t *testing.T) {
	matcher, notifier := newStandIn(t, "matcher"), newStandIn(t, "notifier")
	srv := proxy(t, clairproxy.Config{MatcherURL: matcher.srv.URL, NotifierURL: notifier.srv.URL + "/"})
	const auth = "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJxdWF5In0.sig"
	for _, tc := range []struct {
		name, method, target, body string
		to                         *standIn
		status                     int
		want                       seen
	}{
		{name: "vulnerability report", method: http.MethodGet, target: "/matcher/api/v1/vulnerability_report/sha256:0123abcd", to: matcher, status: 200,
			want: seen{Method: "GET", Path: "/matcher/api/v1/vulnerability_report/sha256:0123abcd", Authorization: auth}},
		{name: "matcher's internal API with a body", method: http.MethodPost, target: "/matcher/api/v1/internal/update_diff?cur=a&prev=b", body: `{"x":1}`, to: matcher, status: 200,
			want: seen{Method: "POST", Path: "/matcher/api/v1/internal/update_diff", Query: "cur=a&prev=b", Body: `{"x":1}`, Authorization: auth}},
		{name: "notification page", method: http.MethodGet, target: "/notifier/api/v1/notification/2c8f7a35-3d6e-4bd7-9a6c-1c0ad5f1f2a1?page_size=100&next=e7e6", to: notifier, status: 200,
			want: seen{Method: "GET", Path: "/notifier/api/v1/notification/2c8f7a35-3d6e-4bd7-9a6c-1c0ad5f1f2a1", Query: "page_size=100&next=e7e6", Authorization: auth}},
		{name: "notification delete", method: http.MethodDelete, target: "/notifier/api/v1/notification/2c8f7a35-3d6e-4bd7-9a6c-1c0ad5f1f2a1", to: notifier, status: 200,
			want: seen{Method: "DELETE", Path: "/notifier/api/v1/notification/2c8f7a35-3d6e-4bd7-9a6c-1c0ad5f1f2a1", Authorization: auth}},
		{name: "escaped path kept", method: http.MethodGet, target: "/matcher/api/v1/vulnerability_report/sha256%3A0123", to: matcher, status: 200,
			want: seen{Method: "GET", Path: "/matcher/api/v1/vulnerability_report/sha256:0123", RawPath: "/matcher/api/v1/vulnerability_report/sha256%3A0123", Authorization: auth}},
		{name: "the service's 404 comes back", method: http.MethodGet, target: "/matcher/api/v1/vulnerability_report/notfound", to: matcher, status: 404,
			want: seen{Method: "GET", Path: "/matcher/api/v1/vulnerability_report/notfound", Authorization: auth}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := send(t, srv, tc.method, tc.target, tc.body, auth)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d %q, want %d", res.StatusCode, body, tc.status)
			}
			if tc.status == 200 && body != `{"from":"`+tc.to.name+`"}` {
				t.Errorf("body %q, want the %s's", body, tc.to.name)
			}
			if et := res.Header.Get("ETag"); et != `"`+tc.to.name+`-etag"` {
				t.Errorf("ETag %q: the service's headers do not come back", et)
			}
			got := tc.to.last(t)
			if got.ForwardedFor == "" {
				t.Error("no X-Forwarded-For")
			}
			if got.Host != strings.TrimPrefix(tc.to.srv.URL, "http://") {
				t.Errorf("Host %q", got.Host)
			}
			got.ForwardedFor, got.Host = "", ""
			if got != tc.want {
				t.Errorf("the %s got %+v, want %+v", tc.to.name, got, tc.want)
			}
		})
	}
	// The indexer's paths stay with Stevedore.
	before := matcher.count() + notifier.count()
	if res, body := send(t, srv, http.MethodGet, "/indexer/api/v1/index_state", "", auth); res.StatusCode != 200 || body != "indexer /indexer/api/v1/index_state" {
		t.Errorf("indexer path: %d %q", res.StatusCode, body)
	}
	if res, body := send(t, srv, http.MethodGet, "/matchers/x", "", auth); res.StatusCode != 200 || body != "indexer /matchers/x" {
		t.Errorf("/matchers/: %d %q", res.StatusCode, body)
	}
	if n := matcher.count() + notifier.count(); n != before {
		t.Errorf("%d requests went to Clair", n-before)
	}
}

// A base URL with a path keeps it in front of the request's.
func TestProxyBasePath(t *testing.T) {
	matcher := newStandIn(t, "matcher")
	srv := proxy(t, clairproxy.Config{MatcherURL: matcher.srv.URL + "/clair"})
	if res, body := send(t, srv, http.MethodGet, "/matcher/api/v1/vulnerability_report/sha256:00", "", ""); res.StatusCode != 200 {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	if got := matcher.last(t); got.Path != "/clair/matcher/api/v1/vulnerability_report/sha256:00" || got.Authorization != "" {
		t.Errorf("got %+v", got)
	}
}

func TestProxyErrors(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	srv := proxy(t, clairproxy.Config{MatcherURL: downURL})
	for _, tc := range []struct {
		name, target string
		status       int
		code, want   string
	}{
		{"notifier not configured", "/notifier/api/v1/notification/x", 503, "not-configured", "set --clair-notifier-url"},
		{"matcher down", "/matcher/api/v1/vulnerability_report/sha256:00", 502, "bad-gateway", "the Clair matcher did not answer: dial tcp"}, {"matcher down names its flag", "/matcher/x", 502, "bad-gateway", "set by --clair-matcher-url (env STEVEDORE_CLAIR_MATCHER_URL)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := send(t, srv, http.MethodGet, tc.target, "", "Bearer x")
			if res.StatusCode != tc.status || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s %q, want %d JSON", res.StatusCode, res.Header.Get("Content-Type"), body, tc.status)
			}
			var e apierr.Body
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if e.Code != tc.code || !strings.Contains(e.Message, tc.want) {
				t.Errorf("body %+v, want code %q and a message with %q", e, tc.code, tc.want)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"http://clair-matcher:6060", ""},
		{"https://clair.example.com/base/", ""},
		{"clair-matcher:6060", "want an http:// or https:// URL"},
		{"ftp://x", "want an http:// or https:// URL"},
		{"http://", "no host"},
		{"http://user:hunter2@clair:6060", "credentials do not belong"},
		{"http://clair:6060/?x=1", "without query"},
		{"http://a b", "is not a URL"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := clairproxy.ParseURL(tc.in)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows a password: %v", err)
			}
		})
	}
	if _, err := clairproxy.Mount(clairproxy.Config{NotifierURL: "notifier:6060"}, http.NotFoundHandler(), clairproxy.Options{}); err == nil || !strings.Contains(err.Error(), "--clair-notifier-url") {
		t.Errorf("Mount with a bad URL: %v", err)
	}
}
