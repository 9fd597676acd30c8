package apierr_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		write   func(w http.ResponseWriter)
		status  int
		ctype   string
		nosniff string
		link    string
		body    string
	}{
		{"error", func(w http.ResponseWriter) {
			w.Header().Set("Link", `</next>; rel="next"`)
			w.Header().Set("Content-Type", "text/plain")
			apierr.Write(w, http.StatusBadRequest, "bad-request", "a <b> & c")
		}, 400, "application/json", "nosniff", "", `{"code":"bad-request","message":"a \u003cb\u003e \u0026 c"}` + "\n"},
		{"json", func(w http.ResponseWriter) {
			apierr.WriteJSON(w, http.StatusOK, map[string]int{"a": 1})
		}, 200, "application/json", "", "", `{"a":1}` + "\n"},
		{"json keeps its content type", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/vnd.x+json")
			apierr.WriteJSON(w, http.StatusAccepted, []int{1})
		}, 202, "application/vnd.x+json", "", "", "[1]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.write(rec)
			h := rec.Header()
			if rec.Code != tc.status || h.Get("Content-Type") != tc.ctype || h.Get("X-Content-Type-Options") != tc.nosniff || h.Get("Link") != tc.link || rec.Body.String() != tc.body {
				t.Errorf("got %d %q %q %q %q", rec.Code, h.Get("Content-Type"), h.Get("X-Content-Type-Options"), h.Get("Link"), rec.Body.String())
			}
		})
	}
}
