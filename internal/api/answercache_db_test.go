package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// queryCounter counts the queries of the connections it traces.
type queryCounter struct{ n atomic.Int64 }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// eventually calls f until it returns true, for 30 s at most.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !f(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within 30 s", what)
		}
	}
}

// instanceA returns an API on its own pool on pool's database, the counter
// of that pool's queries, and its connections' application_name.
func instanceA(t *testing.T, pool *pgxpool.Pool, state string) (*httptest.Server, *queryCounter, string) {
	t.Helper()
	counter := new(queryCounter)
	cfg := pool.Config().Copy()
	cfg.ConnConfig.Tracer = counter
	appName := fmt.Sprintf("answer-cache-a-%d", time.Now().UnixNano())
	cfg.ConnConfig.RuntimeParams["application_name"] = appName
	poolA, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(poolA.Close)
	stA := postgres.New(poolA)
	srvA := httptest.NewServer(api.New(intake.New(stA, nil, nil, state, nil), stA, nil, nil))
	t.Cleanup(srvA.Close)
	return srvA, counter, appName
}

// killListener terminates the listening connection of application appName.
func killListener(t *testing.T, pool *pgxpool.Pool, appName string) {
	t.Helper()
	var killed int
	err := pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`, appName).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("kill A's listening connection: %d killed (%v), want 1", killed, err)
	}
}

// An API process serves a stored answer it kept with no query while it
// listens for changes; another process (here: another pool, store and API
// on the same database) replacing or deleting the report is heard, and the
// first serves the new answer or 404; with its listening connection killed,
// it serves nothing from memory until it listens again.
func TestAnswerCacheAcrossInstances(t *testing.T) {
	const state = "scanners-1"
	pool := pgtest.Pool(t)
	srvA, counter, appName := instanceA(t, pool, state)
	stB := postgres.New(pool)
	srvB := httptest.NewServer(api.New(intake.New(stB, nil, nil, state, nil), stB, nil, nil))
	t.Cleanup(srvB.Close)

	d := report.Digest(fmt.Sprintf("sha256:%064x", 21))
	path := "/indexer/api/v1/index_report/" + string(d)
	m, err := json.Marshal(&report.Manifest{Hash: d, Layers: []*report.Layer{{Hash: report.Digest(fmt.Sprintf("sha256:%064x", 22)), URI: "https://r.example/v2/a/blobs/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	write := func(n int) reportbody.Body {
		r := bigReport(d, n)
		r.ScannerState = state
		finish(t, pool, r)
		return want(t, stB, d, reportbody.ViewClair)
	}
	// served GETs path from A until its answer has the ETag etag.
	served := func(step, etag string) {
		t.Helper()
		eventually(t, step+": A serves the new answer", func() bool { return get(t, srvA, path, nil).header.Get("ETag") == etag })
	}
	// fromMemory GETs path from A until A answers with no query.
	fromMemory := func(step string, w reportbody.Body) {
		t.Helper()
		eventually(t, step+": A answers from memory", func() bool {
			n := counter.n.Load()
			a := get(t, srvA, path, nil)
			if a.status != http.StatusOK || a.header.Get("ETag") != w.ETag || !bytes.Equal(a.body, w.Data) {
				t.Fatalf("%s: HTTP %d ETag %s (want %s), bytes equal: %v", step, a.status, a.header.Get("ETag"), w.ETag, bytes.Equal(a.body, w.Data))
			}
			return counter.n.Load() == n
		})
	}

	w := write(3)
	fromMemory("first answer", w)
	n := counter.n.Load()
	if a := request(t, srvA, "POST", "/indexer/api/v1/index_report", nil, m); a.status != http.StatusCreated || !bytes.Equal(a.body, w.Data) {
		t.Fatalf("warm POST: HTTP %d, body equal to the stored answer: %v", a.status, bytes.Equal(a.body, w.Data))
	}
	if a := get(t, srvA, path, http.Header{"If-None-Match": {w.ETag}}); a.status != http.StatusNotModified {
		t.Fatalf("GET If-None-Match its ETag: HTTP %d, want 304", a.status)
	}
	if q := counter.n.Load() - n; q != 0 {
		t.Fatalf("warm POST and conditional GET: %d queries, want none", q)
	}

	w = write(5) // written again by another process
	served("report written again", w.ETag)
	fromMemory("report written again", w)

	// The listening connection killed: A stops trusting what it keeps (a
	// GET queries), and trusts it again once it listens again.
	killListener(t, pool, appName)
	eventually(t, "connection killed: A queries", func() bool {
		n := counter.n.Load()
		get(t, srvA, path, nil)
		return counter.n.Load() != n
	})
	w = write(7)
	served("written after the connection was killed", w.ETag)
	fromMemory("listening again", w)

	if a := request(t, srvB, "DELETE", path, nil, nil); a.status != http.StatusNoContent {
		t.Fatalf("DELETE from B: HTTP %d", a.status)
	}
	eventually(t, "deleted from B: A answers 404", func() bool { return get(t, srvA, path, nil).status == http.StatusNotFound })
}
