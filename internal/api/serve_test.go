package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// bigReport is an Alpine report with n more packages: big enough for several
// chunks of a stored answer, compressed, when n is in the thousands (each
// version carries 256 hexadecimal digits that do not compress).
func bigReport(d report.Digest, n int) *report.Report {
	r := alpineReport(d)
	for i := range n {
		id := strconv.Itoa(i + 2)
		r.Packages[id] = &report.Package{ID: id, Name: fmt.Sprintf("package-%d", i), Version: "1.0." + id + "+" + noise(id), Kind: report.KindBinary, Arch: "x86_64",
			PURL: "pkg:apk/alpine/package-" + id}
		r.Environments[id] = []*report.Environment{{PackageDB: "lib/apk/db/installed", IntroducedIn: d, DistributionID: "1"}}
	}
	return r
}

// noise is 256 hexadecimal digits derived from s, as good as random to a
// compressor.
func noise(s string) string {
	var out []byte
	for i := range 4 {
		h := sha256.Sum256([]byte(s + strconv.Itoa(i)))
		out = hex.AppendEncode(out, h[:])
	}
	return string(out)
}

// answerViews are the paths a report's stored answers are served on, and
// their views.
var answerViews = []struct{ path, view string }{
	{"/indexer/api/v1/index_report/", reportbody.ViewClair},
	{"/api/v1/reports/", reportbody.ViewNative},
}

// storedAnswer returns the number of chunks and the encoding of d's stored
// answer in view.
func storedAnswer(t *testing.T, pool *pgxpool.Pool, d report.Digest, view string) (chunks int, encoding string) {
	t.Helper()
	if err := pool.QueryRow(context.Background(), `SELECT chunks, encoding FROM report_body WHERE manifest_hash = $1 AND view = $2`, string(d), view).Scan(&chunks, &encoding); err != nil {
		t.Fatalf("stored %s answer of %s: %v", view, d, err)
	}
	return chunks, encoding
}

// finish stores r as its manifest's final report under a new lease.
func finish(t *testing.T, pool *pgxpool.Pool, r *report.Report) {
	t.Helper()
	ctx := context.Background()
	l, err := leases.New(pool, "test", leases.WithTTL(time.Minute)).Acquire(ctx, string(r.Hash))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if err := postgres.New(pool).FinishManifest(ctx, postgres.Fence{Digest: r.Hash, Token: l.Fence}, r, nil, nil); err != nil {
		t.Fatal(err)
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// get GETs path with the headers hdr and nothing else: the body as sent (no
// Accept-Encoding unless hdr has one, and no transparent decompression).
func get(t *testing.T, srv *httptest.Server, path string, hdr http.Header) answer {
	t.Helper()
	return request(t, srv, "GET", path, hdr, nil)
}

// request is get with any method and a body.
func request(t *testing.T, srv *httptest.Server, method, path string, hdr http.Header, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DisableCompression = true
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, path, err)
	}
	return answer{resp.StatusCode, resp.Header, got}
}

// want returns the answer of d's report as the API encodes a report read
// from the store (what it served before answers were stored).
func want(t *testing.T, st *postgres.Store, d report.Digest, view string) reportbody.Body {
	t.Helper()
	rep, err := st.Report(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := reportbody.Encode(rep, view)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Terminal reports are served from their stored answers, streamed with a
// Content-Length, byte for byte what encoding the stored report gives; a
// 304 reads none of the answer.
func TestStoredAnswers(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	srv := httptest.NewServer(api.New(nil, st, nil, nil))
	defer srv.Close()
	for _, tc := range []struct {
		name     string
		packages int
		chunks   int
	}{
		{"one chunk", 0, 1},
		{"several chunks", 6000, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := report.Digest(fmt.Sprintf("sha256:%064x", tc.packages+1))
			finish(t, pool, bigReport(d, tc.packages))
			for _, v := range answerViews {
				w := want(t, st, d, v.view)
				a := get(t, srv, v.path+string(d), nil)
				if a.status != http.StatusOK || !bytes.Equal(a.body, w.Data) || a.header.Get("ETag") != w.ETag {
					t.Fatalf("GET %s: HTTP %d ETag %s (want %s), %d bytes equal to the encoding: %v", v.path, a.status, a.header.Get("ETag"), w.ETag, len(a.body), bytes.Equal(a.body, w.Data))
				}
				if a.header.Get("Content-Length") != strconv.Itoa(len(w.Data)) {
					t.Fatalf("GET %s: Content-Length %q, want %d", v.path, a.header.Get("Content-Length"), len(w.Data))
				}
				if n, _ := storedAnswer(t, pool, d, v.view); n < tc.chunks {
					t.Fatalf("stored %s answer: %d chunks, want at least %d", v.view, n, tc.chunks)
				}
			}
		})
	}

	// 304 without reading the answer: with its chunks gone, a conditional
	// GET naming the ETag still answers 304, one that does not fails (on
	// a server keeping no answers in memory: see TestAnswerCache).
	srv = httptest.NewServer(api.New(nil, st, nil, nil, api.WithAnswerCacheBytes(0)))
	defer srv.Close()
	d := report.Digest(fmt.Sprintf("sha256:%064x", 1))
	etag := get(t, srv, "/indexer/api/v1/index_report/"+string(d), nil).header.Get("ETag")
	if _, err := pool.Exec(ctx, `DELETE FROM report_body_chunk c USING report_body b WHERE c.body_id = b.id AND b.manifest_hash = $1`, string(d)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		inm    string
		status int
	}{
		{etag, http.StatusNotModified},
		{"W/" + etag, http.StatusNotModified},
		{`"other", ` + etag, http.StatusNotModified},
		{"*", http.StatusNotModified},
		{`"other"`, http.StatusInternalServerError},
	} {
		a := get(t, srv, "/indexer/api/v1/index_report/"+string(d), http.Header{"If-None-Match": {tc.inm}})
		if a.status != tc.status || (tc.status == http.StatusNotModified && (len(a.body) != 0 || a.header.Get("ETag") != etag)) {
			t.Errorf("If-None-Match %s with the answer's chunks gone: HTTP %d ETag %q, want %d", tc.inm, a.status, a.header.Get("ETag"), tc.status)
		}
	}
}

// A partial report replaced by the complete one gets a new stored answer and
// ETag; the partial one is served as IndexFinished, or as IndexPartial with
// the switch.
func TestStoredAnswerReplaced(t *testing.T) {
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	srv := httptest.NewServer(api.New(nil, st, nil, nil))
	defer srv.Close()
	partialSrv := httptest.NewServer(api.New(nil, st, nil, nil, api.WithServePartial(true)))
	defer partialSrv.Close()
	d := report.Digest(fmt.Sprintf("sha256:%064x", 7))
	path := "/indexer/api/v1/index_report/" + string(d)

	partial := bigReport(d, 10)
	partial.State = report.StateIndexPartial
	partial.Partial = []report.PartialReason{{Scanner: "rhel-vex", Reason: "no enrichment data"}}
	finish(t, pool, partial)
	type seen struct{ etag, state string }
	look := func(srv *httptest.Server, hdr http.Header) (answer, seen) {
		a := get(t, srv, path, hdr)
		var r struct{ State string }
		if a.status == http.StatusOK {
			if err := json.Unmarshal(a.body, &r); err != nil {
				t.Fatal(err)
			}
		}
		return a, seen{a.header.Get("ETag"), r.State}
	}
	_, p1 := look(srv, nil)
	_, pp := look(partialSrv, nil)
	if p1.state != "IndexFinished" || pp.state != "IndexPartial" || p1.etag == pp.etag {
		t.Fatalf("partial report: served %+v, with the switch %+v", p1, pp)
	}
	if b := want(t, st, d, reportbody.ViewClairPartial); b.ETag != pp.etag {
		t.Fatalf("with the switch: ETag %s, want %s", pp.etag, b.ETag)
	}

	complete := bigReport(d, 11)
	complete.State = report.StateIndexFinished
	finish(t, pool, complete)
	for _, s := range []*httptest.Server{srv, partialSrv} {
		// Heard of by the API's listener, not at once.
		eventually(t, "the complete report served", func() bool {
			_, c := look(s, nil)
			return c.state == "IndexFinished" && c.etag != p1.etag
		})
		a, c := look(s, http.Header{"If-None-Match": {p1.etag + ", " + pp.etag}})
		w := want(t, st, d, reportbody.ViewClair)
		if a.status != http.StatusOK || c.state != "IndexFinished" || c.etag == p1.etag || c.etag == pp.etag || c.etag != w.ETag || !bytes.Equal(a.body, w.Data) {
			t.Fatalf("complete report after the partial one: HTTP %d %+v, want 200 IndexFinished with ETag %s", a.status, c, w.ETag)
		}
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM report_body WHERE manifest_hash = $1`, string(d)).Scan(&n); err != nil || n != 2 {
		t.Fatalf("stored answers of the complete report: %d (%v), want 2 (clair, native)", n, err)
	}
}

// A report stored without answers (before they were kept) is served as
// before, and its answers are stored then.
func TestReportWithoutStoredAnswers(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	srv := httptest.NewServer(api.New(nil, st, nil, nil))
	defer srv.Close()
	d := report.Digest(fmt.Sprintf("sha256:%064x", 9))
	rep := bigReport(d, 2000)
	finish(t, pool, rep)
	path := "/indexer/api/v1/index_report/" + string(d)
	before := get(t, srv, path, nil)
	// As a release before answers were kept stored it: all of it in its
	// row (updated_at as written), no answers.
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
WITH gone AS (DELETE FROM report_body)
UPDATE index_report SET report = $2::jsonb || jsonb_build_object('updated_at', report->'updated_at') WHERE manifest_hash = $1`, string(d), raw); err != nil {
		t.Fatal(err)
	}
	for i, phase := range []string{"without stored answers", "answers stored by the first GET"} {
		a := get(t, srv, path, nil)
		w := want(t, st, d, reportbody.ViewClair)
		if a.status != http.StatusOK || !bytes.Equal(a.body, w.Data) || !bytes.Equal(a.body, before.body) || a.header.Get("ETag") != before.header.Get("ETag") {
			t.Fatalf("%s: HTTP %d, ETag %s (before: %s), same body as before: %v", phase, a.status, a.header.Get("ETag"), before.header.Get("ETag"), bytes.Equal(a.body, before.body))
		}
		if a = get(t, srv, path, http.Header{"If-None-Match": {before.header.Get("ETag")}}); a.status != http.StatusNotModified {
			t.Fatalf("%s: conditional GET: HTTP %d, want 304", phase, a.status)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM report_body WHERE manifest_hash = $1`, string(d)).Scan(&n); err != nil || n != 2 {
			t.Fatalf("%s (GET %d): %d stored answers (%v), want 2", phase, i+1, n, err)
		}
	}
	// A report not terminal has no stored answer and is served encoded.
	q := report.Digest(fmt.Sprintf("sha256:%064x", 10))
	if _, _, err := st.Enqueue(ctx, q, "state", func(*report.Report) bool { return false }, func(context.Context, *report.Report, bool) (bool, error) { return true, nil }); err != nil {
		t.Fatal(err)
	}
	a := get(t, srv, "/api/v1/reports/"+string(q), nil)
	if w := want(t, st, q, reportbody.ViewNative); a.status != http.StatusOK || !bytes.Equal(a.body, w.Data) {
		t.Fatalf("queued report: HTTP %d %s", a.status, a.body)
	}
}

// A POST index_report for a current report answers 201 with its stored
// answer, the index state as its ETag, Location and Links, as Clair does.
func TestWarmPostServesTheStoredAnswer(t *testing.T) {
	const state = "scanners-1"
	srv, st, d, m := warmReport(t, state, 11, 3000)
	resp, err := srv.Client().Post(srv.URL+"/indexer/api/v1/index_report", "application/json", bytes.NewReader(m))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	w := want(t, st, d, reportbody.ViewClair)
	if resp.StatusCode != http.StatusCreated || !bytes.Equal(body, w.Data) || resp.Header.Get("ETag") != `"`+state+`"` ||
		resp.Header.Get("Location") != "/indexer/api/v1/index_report/"+string(d) || len(resp.Header.Values("Link")) != 2 {
		t.Fatalf("warm POST: HTTP %d, ETag %q, Location %q, Links %q, body equal to the stored answer: %v",
			resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("Location"), resp.Header.Values("Link"), bytes.Equal(body, w.Data))
	}
}

// warmReport serves, with a dispatcher of scanner state state, a finished
// report of n packages made with that state (current: a POST answers 201
// at once); it returns the server, the store, the report's digest (from
// seed) and its manifest as JSON.
func warmReport(t *testing.T, state string, seed, n int) (*httptest.Server, *postgres.Store, report.Digest, []byte) {
	t.Helper()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	srv := httptest.NewServer(api.New(intake.New(st, nil, nil, state, nil), st, nil, nil))
	t.Cleanup(srv.Close)
	d := report.Digest(fmt.Sprintf("sha256:%064x", seed))
	r := bigReport(d, n)
	r.ScannerState = state
	finish(t, pool, r)
	m, err := json.Marshal(&report.Manifest{Hash: d, Layers: []*report.Layer{{Hash: report.Digest(fmt.Sprintf("sha256:%064x", seed+1)), URI: "https://r.example/v2/a/blobs/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	return srv, st, d, m
}
