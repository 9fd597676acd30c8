package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// gunzip returns the decompressed bytes of a gzip body.
func gunzip(t *testing.T, body []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	return out
}

// checkCoding checks a, an answer of w (the answer's JSON and its stored
// ETag): gzip compressed with the weak ETag, or the JSON with the strong
// one, its Content-Length the bytes sent, Vary: Accept-Encoding.
func checkCoding(t *testing.T, step string, a answer, w reportbody.Body, gzipped bool) {
	t.Helper()
	body, etag := a.body, w.ETag
	if gzipped {
		if a.header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: Content-Encoding %q, want gzip", step, a.header.Get("Content-Encoding"))
		}
		body, etag = gunzip(t, a.body), "W/"+w.ETag
	} else if ce := a.header.Get("Content-Encoding"); ce != "" {
		t.Fatalf("%s: Content-Encoding %q, want none", step, ce)
	}
	if a.status != http.StatusOK || !bytes.Equal(body, w.Data) || a.header.Get("ETag") != etag ||
		a.header.Get("Content-Length") != strconv.Itoa(len(a.body)) || !slices.Contains(a.header.Values("Vary"), "Accept-Encoding") {
		t.Fatalf("%s: HTTP %d, ETag %s (want %s), Content-Length %s of %d bytes, Vary %q, JSON equal to the encoding: %v",
			step, a.status, a.header.Get("ETag"), etag, a.header.Get("Content-Length"), len(a.body), a.header.Values("Vary"), bytes.Equal(body, w.Data))
	}
}

// Stored answers are gzip compressed: sent as stored (Content-Encoding:
// gzip, the stored ETag weak) to a request whose Accept-Encoding allows
// gzip, decompressed while streamed (the stored ETag, strong) to any other;
// HEAD has GET's headers; an answer of several chunks is decompressed chunk
// by chunk; a conditional GET naming either coding's tag answers 304 with
// the tag of the coding it would have sent.
func TestStoredAnswerCodings(t *testing.T) {
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	for cache, srv := range answerServers(t, st) {
		for _, tc := range []struct {
			name     string
			packages int
			chunks   int
		}{
			{"one chunk", 3, 1},
			{"several chunks", 6000, 4},
		} {
			d := report.Digest(fmt.Sprintf("sha256:%064x", 100+tc.packages))
			finish(t, pool, bigReport(d, tc.packages))
			if chunks, encoding := storedAnswer(t, pool, d, reportbody.ViewClair); chunks < tc.chunks || encoding != reportbody.EncodingGzip {
				t.Fatalf("%s: stored in %d chunks, %s, want at least %d, gzip", tc.name, chunks, encoding, tc.chunks)
			}
			for _, v := range answerViews {
				w := want(t, st, d, v.view)
				checkCodings(t, srv, fmt.Sprintf("cache %d, %s, GET %s", cache, tc.name, v.path), v.path+string(d), w)
			}
		}
	}
}

// checkCodings requests path with each Accept-Encoding, as GET and HEAD,
// and conditionally with either coding's tag.
func checkCodings(t *testing.T, srv *httptest.Server, step, path string, w reportbody.Body) {
	t.Helper()
	for _, tc := range []struct {
		accept  []string // nil: none
		gzipped bool
	}{
		{nil, false},
		{[]string{"gzip"}, true},
		{[]string{"gzip, deflate"}, true}, // Python requests (Quay)
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip;q=0, *"}, false},
		{[]string{"*"}, true},
		{[]string{"identity"}, false},
		{[]string{"deflate, br"}, false},
	} {
		hdr := http.Header{}
		if tc.accept != nil {
			hdr["Accept-Encoding"] = tc.accept
		}
		step := fmt.Sprintf("%s, Accept-Encoding %q", step, tc.accept)
		a := get(t, srv, path, hdr)
		checkCoding(t, step, a, w, tc.gzipped)
		head := request(t, srv, "HEAD", path, hdr, nil)
		for _, h := range []string{"Content-Length", "Content-Encoding", "ETag", "Vary", "Content-Type"} {
			if head.status != http.StatusOK || len(head.body) != 0 || head.header.Get(h) != a.header.Get(h) {
				t.Fatalf("%s: HEAD: HTTP %d, %d bytes, %s %q, want GET's %q", step, head.status, len(head.body), h, head.header.Get(h), a.header.Get(h))
			}
		}
		for _, inm := range []string{w.ETag, "W/" + w.ETag, `"other", W/` + w.ETag} {
			c := hdr.Clone()
			c.Set("If-None-Match", inm)
			nm := get(t, srv, path, c)
			if nm.status != http.StatusNotModified || len(nm.body) != 0 || nm.header.Get("ETag") != a.header.Get("ETag") ||
				!slices.Contains(nm.header.Values("Vary"), "Accept-Encoding") {
				t.Fatalf("%s: If-None-Match %s: HTTP %d, ETag %q (want %q), Vary %q, want 304", step, inm, nm.status, nm.header.Get("ETag"), a.header.Get("ETag"), nm.header.Values("Vary"))
			}
		}
		c := hdr.Clone()
		c.Set("If-None-Match", `"other"`)
		checkCoding(t, step+", If-None-Match another tag", get(t, srv, path, c), w, tc.gzipped)
	}
}

// Go's HTTP client (Clair's, claircore's, clairctl's) asks for gzip and
// decompresses transparently: it reads the JSON, and the tag it got answers
// 304 when sent back.
func TestGoClientGetsGzipAnd304(t *testing.T) {
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	srv := httptest.NewServer(api.New(nil, st, nil, nil))
	defer srv.Close()
	d := report.Digest(fmt.Sprintf("sha256:%064x", 31))
	finish(t, pool, bigReport(d, 20))
	path := srv.URL + "/indexer/api/v1/index_report/" + string(d)
	do := func(inm string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	w := want(t, st, d, reportbody.ViewClair)
	resp, body := do("")
	if resp.StatusCode != http.StatusOK || !resp.Uncompressed || !bytes.Equal(body, w.Data) || resp.Header.Get("ETag") != "W/"+w.ETag {
		t.Fatalf("Go client: HTTP %d, decompressed by the transport: %v, ETag %s, JSON equal: %v", resp.StatusCode, resp.Uncompressed, resp.Header.Get("ETag"), bytes.Equal(body, w.Data))
	}
	var r struct {
		Hash string `json:"manifest_hash"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Hash != string(d) {
		t.Fatalf("Go client: %v, hash %q", err, r.Hash)
	}
	if resp, _ := do(resp.Header.Get("ETag")); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("Go client sending back its ETag: HTTP %d, want 304", resp.StatusCode)
	}
}

// Answers stored before they were compressed (content coding identity, as
// migration 00019 marks them) are served as they are, with their strong
// ETag, whatever the request accepts; conditional GETs answer 304.
func TestIdentityAnswersStillServed(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	for cache, srv := range answerServers(t, st) {
		for _, n := range []int{3, 6000} {
			d := report.Digest(fmt.Sprintf("sha256:%064x", 200+n))
			finish(t, pool, bigReport(d, n))
			rep, err := st.Report(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			// As the API before compression stored them.
			var bodies []reportbody.Body
			for _, v := range reportbody.Stored(rep) {
				b, err := reportbody.Encode(rep, v)
				if err != nil {
					t.Fatal(err)
				}
				bodies = append(bodies, b)
			}
			if _, err := pool.Exec(ctx, `DELETE FROM report_body WHERE manifest_hash = $1`, string(d)); err != nil {
				t.Fatal(err)
			}
			if err := st.StoreBodies(ctx, rep, bodies); err != nil {
				t.Fatal(err)
			}
			var encodings []string
			if err := pool.QueryRow(ctx, `SELECT array_agg(encoding) FROM report_body WHERE manifest_hash = $1`, string(d)).Scan(&encodings); err != nil ||
				len(encodings) != 2 || encodings[0] != "identity" || encodings[1] != "identity" {
				t.Fatalf("answers stored as identity: %v (%v)", encodings, err)
			}
			w := want(t, st, d, reportbody.ViewClair)
			path := "/indexer/api/v1/index_report/" + string(d)
			for _, accept := range []string{"", "gzip", "gzip, deflate"} {
				step := fmt.Sprintf("cache %d, %d packages, Accept-Encoding %q", cache, n, accept)
				hdr := http.Header{}
				if accept != "" {
					hdr.Set("Accept-Encoding", accept)
				}
				for range 2 { // the second from memory, when kept
					checkCoding(t, step, get(t, srv, path, hdr), w, false)
				}
				hdr.Set("If-None-Match", w.ETag)
				if a := get(t, srv, path, hdr); a.status != http.StatusNotModified || a.header.Get("ETag") != w.ETag {
					t.Fatalf("%s: If-None-Match: HTTP %d ETag %s, want 304 %s", step, a.status, a.header.Get("ETag"), w.ETag)
				}
			}
		}
	}
}

// A warm POST index_report sends the stored answer gzip compressed to a
// client that accepts it (Quay's, Go's), decompressed to one that does not;
// its ETag stays the index state.
func TestWarmPostCodings(t *testing.T) {
	const state = "scanners-1"
	srv, st, d, m := warmReport(t, state, 41, 6000)
	w := want(t, st, d, reportbody.ViewClair)
	for _, tc := range []struct {
		accept  string
		gzipped bool
	}{{"", false}, {"gzip, deflate", true}, {"gzip;q=0", false}} {
		hdr := http.Header{"Content-Type": {"application/json"}}
		if tc.accept != "" {
			hdr.Set("Accept-Encoding", tc.accept)
		}
		a := request(t, srv, "POST", "/indexer/api/v1/index_report", hdr, m)
		body := a.body
		if tc.gzipped {
			if a.header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Accept-Encoding %q: Content-Encoding %q", tc.accept, a.header.Get("Content-Encoding"))
			}
			body = gunzip(t, body)
		}
		if a.status != http.StatusCreated || !bytes.Equal(body, w.Data) || a.header.Get("ETag") != `"`+state+`"` ||
			(!tc.gzipped && a.header.Get("Content-Encoding") != "") || a.header.Get("Content-Length") != strconv.Itoa(len(a.body)) {
			t.Fatalf("warm POST, Accept-Encoding %q: HTTP %d, ETag %q, Content-Encoding %q, Content-Length %s of %d, JSON equal to the stored answer: %v",
				tc.accept, a.status, a.header.Get("ETag"), a.header.Get("Content-Encoding"), a.header.Get("Content-Length"), len(a.body), bytes.Equal(body, w.Data))
		}
	}
}

// answerServers returns an API on st keeping answers in memory (the
// default bound) and one keeping none, by their bound in bytes; they close
// when the test ends.
func answerServers(t *testing.T, st *postgres.Store) iter.Seq2[int64, *httptest.Server] {
	t.Helper()
	var srvs []*httptest.Server
	bounds := []int64{api.DefaultAnswerCacheBytes, 0}
	for _, b := range bounds {
		srv := httptest.NewServer(api.New(nil, st, nil, nil, api.WithAnswerCacheBytes(b)))
		t.Cleanup(srv.Close)
		srvs = append(srvs, srv)
	}
	return func(yield func(int64, *httptest.Server) bool) {
		for i, srv := range srvs {
			if !yield(bounds[i], srv) {
				return
			}
		}
	}
}
