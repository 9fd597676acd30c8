// Package apitest sends HTTP requests for the API's tests: one request,
// its answer read whole, any failure to send or read failing the test.
package apitest

import (
	"io"
	"net/http"
	"testing"
)

// Do sends method url with body (nil: none) and header through hc and
// returns the answer with its body read and closed. A request that cannot
// be built, sent or read fails t at once.
func Do(t testing.TB, hc *http.Client, method, url string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}
