package benchserve

import (
	"io"
	"net/http"
	"testing"
)

func TestServe(t *testing.T) {
	base, closeSrv, err := Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "/x" {
		t.Errorf("body %q, want /x", b)
	}
	if err := closeSrv(); err != nil {
		t.Errorf("close: %v", err)
	}
	if _, err := http.Get(base + "/x"); err == nil {
		t.Error("served after close")
	}
}
