package apitest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/api/apitest"
)

// Do sends the method, body and headers it is given and returns the whole
// answer.
func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Got", r.Method+" "+strings.Join(r.Header.Values("Authorization"), ","))
		w.WriteHeader(http.StatusTeapot)
		w.Write(append([]byte("body:"), b...))
	}))
	defer srv.Close()
	res, b := apitest.Do(t, srv.Client(), "PUT", srv.URL+"/x", strings.NewReader("hello"),
		http.Header{"Authorization": {"a", "b"}})
	if res.StatusCode != http.StatusTeapot || string(b) != "body:hello" || res.Header.Get("X-Got") != "PUT a,b" {
		t.Errorf("answer %d %q %q", res.StatusCode, b, res.Header.Get("X-Got"))
	}
}
