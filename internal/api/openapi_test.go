package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The embedded document is valid OpenAPI 3 (kin-openapi's loader and
// validator), and every route registered on the mux is in it, with its
// method.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	s, _ := newServer(nil, nil, nil, nil)
	if len(s.routes) < 10 {
		t.Fatalf("only %d routes registered: %v", len(s.routes), s.routes)
	}
	for _, r := range s.routes {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			t.Fatalf("route %q has no method", r)
		}
		item := doc.Paths.Find(path)
		if item == nil {
			t.Errorf("route %s: path %s is not in the OpenAPI document", r, path)
			continue
		}
		if item.GetOperation(method) == nil {
			t.Errorf("route %s: no %s operation for %s in the OpenAPI document", r, method, path)
		}
	}
}

func TestServeOpenAPI(t *testing.T) {
	_, h := newServer(nil, nil, nil, nil)
	for _, tc := range []struct {
		accept string
		status int
		ctype  string
	}{
		{"", 200, "application/vnd.oai.openapi+json"},
		{"application/json", 200, "application/json"},
		{"text/html", 415, "application/json"},
	} {
		req := httptest.NewRequest("GET", "/openapi/v1", nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != tc.ctype {
			t.Errorf("Accept %q: HTTP %d %q, want %d %q", tc.accept, rec.Code, rec.Header().Get("Content-Type"), tc.status, tc.ctype)
		}
		if tc.status == 200 {
			if _, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes()); err != nil {
				t.Errorf("served document: %v", err)
			}
		}
	}
}

// Unknown paths and methods answer JSON errors; 405 keeps Allow.
func TestFallbackErrorsAreJSON(t *testing.T) {
	_, h := newServer(nil, nil, nil, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/nope", http.StatusNotFound, ""},
		{"DELETE", "/indexer/api/v1/index_state", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", "/indexer/api/v1/index_report", http.StatusMethodNotAllowed, "DELETE, POST"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" || !strings.Contains(rec.Body.String(), `"message"`) {
			t.Errorf("%s %s: HTTP %d %q %s", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		if rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, rec.Header().Get("Allow"), tc.allow)
		}
	}
}
