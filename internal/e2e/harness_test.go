package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stevedore-dev/stevedore/client"
	"github.com/stevedore-dev/stevedore/internal/api/apitest"
	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/natstest"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// harness is one test's world: a schema, a JetStream server, a registry.
type harness struct {
	t      *testing.T
	dbURL  string
	pool   *pgxpool.Pool
	nats   *natstest.Server
	reg    *devregistry.Server
	api    *httptest.Server
	client *client.Client
	// contract is loaded by checkClairAnswer.
	contract *contract
}

func newHarness(t *testing.T, regOpts ...devregistry.Option) *harness {
	t.Helper()
	h := &harness{t: t, dbURL: pgtest.URL(t)}
	ctx := context.Background()
	pool, err := postgres.Connect(ctx, h.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	h.pool = pool
	// Log every transition of a report (its state or writer changed), to
	// count runs and final writes; bookkeeping updates are not logged.
	if _, err := pool.Exec(ctx, `
CREATE TABLE report_log (manifest_hash text, state text, fence bigint, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION log_report() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO report_log (manifest_hash, state, fence) VALUES (NEW.manifest_hash, NEW.state, NEW.fence); RETURN NEW; END $$;
CREATE TRIGGER report_log_insert AFTER INSERT ON index_report FOR EACH ROW EXECUTE FUNCTION log_report();
CREATE TRIGGER report_log_update AFTER UPDATE ON index_report FOR EACH ROW
  WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.fence IS DISTINCT FROM NEW.fence) EXECUTE FUNCTION log_report();`); err != nil {
		t.Fatal(err)
	}
	h.nats = natstest.Start(t)
	h.reg = devregistry.NewTestServer(t, regOpts...)
	return h
}

// config is a node config on the harness's database and NATS server, with
// short timings.
func (h *harness) config(workers int, dispatcher bool) app.Config {
	return app.Config{
		DatabaseURL: h.dbURL,
		NATSURL:     h.nats.ClientURL(),
		Dispatcher:  dispatcher,
		Workers:     workers,
		LeaseTTL:    3 * time.Second,
		AckWait:     4 * time.Second,
		MaxDeliver:  4,
		RetryBase:   200 * time.Millisecond,
		Logger:      testLogger(h.t),
	}
}

// start runs a node until the test ends. With the dispatcher role its API is
// served and h.client talks to it.
func (h *harness) start(cfg app.Config) *app.Node {
	h.t.Helper()
	n, _ := h.startStoppable(cfg)
	return n
}

// startStoppable is start with a function that stops the node before the
// test ends (it is safe to call more than once). A stopped node's API stays
// h.api if it was the first: start another dispatcher and set h.api anew.
func (h *harness) startStoppable(cfg app.Config) (*app.Node, func()) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n, err := app.Start(ctx, cfg)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			n.Close()
		})
	}
	h.t.Cleanup(stop)
	if n.Handler != nil && h.api == nil {
		h.api = httptest.NewServer(n.Handler)
		h.t.Cleanup(h.api.Close)
		h.client = client.New(h.api.URL, nil)
	}
	return n, stop
}

// push pushes an image made of layers built from files and returns its
// manifest as the dispatcher's resolver sees it.
func (h *harness) push(repoTag string, layers ...map[string][]byte) *report.Manifest {
	h.t.Helper()
	var ls []v1.Layer
	for _, files := range layers {
		l, err := devregistry.LayerFromFiles(files)
		if err != nil {
			h.t.Fatal(err)
		}
		ls = append(ls, l)
	}
	return h.pushLayers(repoTag, ls)
}

// pushLayers pushes an image of the layers ls and returns its manifest as
// the dispatcher's resolver sees it.
func (h *harness) pushLayers(repoTag string, ls []v1.Layer) *report.Manifest {
	h.t.Helper()
	ref := h.reg.Ref(repoTag)
	if _, err := devregistry.PushLayers(context.Background(), ref, ls...); err != nil {
		h.t.Fatal(err)
	}
	imgs, err := resolve.New().Resolve(context.Background(), ref, "")
	if err != nil {
		h.t.Fatal(err)
	}
	return imgs[0].Manifest
}

// wait polls the report of d until it is terminal.
func (h *harness) wait(d report.Digest) *report.Report {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st := postgres.New(h.pool)
	for {
		r, err := st.Report(ctx, d)
		if err == nil && r.State.Terminal() {
			return r
		}
		select {
		case <-ctx.Done():
			h.t.Fatalf("report of %s not terminal in time (last: %v, %v)", d, r, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// count runs a counting query.
func (h *harness) count(sql string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// runs counts the index runs of d by workers (CheckManifest written under a
// lease) and its final writes.
func (h *harness) runs(d report.Digest) (runs, finished int) {
	runs = h.count(`SELECT count(*) FROM report_log WHERE manifest_hash = $1 AND state = 'CheckManifest' AND fence > 0`, string(d))
	finished = h.count(`SELECT count(*) FROM report_log WHERE manifest_hash = $1 AND state = 'IndexFinished'`, string(d))
	return runs, finished
}

func osRelease(id, version string) []byte {
	return []byte(fmt.Sprintf("PRETTY_NAME=\"Test %s %s\"\nNAME=\"Test\"\nID=%s\nVERSION_ID=\"%s\"\n", id, version, id, version))
}

func dpkgStatus(pkgs ...string) []byte {
	var b strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-%s\n\n", p, p)
	}
	return []byte(b.String())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("STEVEDORE_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// apiError is the body of an API error answer.
type apiError struct{ Code, Message string }

// send sends method path with body (content type ctype, when given) to the
// API and returns the status and the error body it holds (zero when the
// answer is not an error's).
func (h *harness) send(method, path, ctype, body string) (int, apiError) {
	h.t.Helper()
	hdr := http.Header{}
	if ctype != "" {
		hdr.Set("Content-Type", ctype)
	}
	resp, b := apitest.Do(h.t, http.DefaultClient, method, h.api.URL+path, strings.NewReader(body), hdr)
	var e apiError
	json.Unmarshal(b, &e)
	return resp.StatusCode, e
}

// deliveries counts the jobs the work queue's consumer has delivered.
func deliveries(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	cons, err := js.Consumer(context.Background(), queue.DefaultStream, queue.DefaultConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.Delivered.Consumer
}

// indexWait asks the API to index m and waits for its report, whatever its
// state.
func (h *harness) indexWait(t *testing.T, m *report.Manifest) *report.Report {
	t.Helper()
	if _, err := h.client.IndexManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return h.wait(m.Hash)
}
