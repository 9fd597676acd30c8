package e2e_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/testing/closedport"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/logbuf"
	"github.com/stevedore-dev/stevedore/report"
)

// pathLog records the paths a registry is asked for.
type pathLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *pathLog) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.paths = append(l.paths, r.URL.Path)
		l.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// dotted returns the paths asked for that have a "." or ".." element.
func (l *pathLog) dotted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.paths {
		for _, e := range strings.Split(p, "/") {
			if e == "." || e == ".." {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// TestDotDotRepositoriesNeverReachTheRegistry: a repository name that
// climbs out of /v2/ (API reference, layer URI, webhook events) is refused
// before any request is sent.
func TestDotDotRepositoriesNeverReachTheRegistry(t *testing.T) {
	var log pathLog
	h := newHarness(t, devregistry.WithMiddleware(log.middleware))
	h.start(h.webhookConfig(1))
	d64 := strings.Repeat("c", 64)

	// The API: POST /api/v1/index with such a reference is a bad request.
	for _, ref := range []string{h.reg.Addr + "/../../x:1", h.reg.Addr + "/a/../../b:latest", h.reg.Addr + "/../x@sha256:" + d64} {
		status, out := h.post("/api/v1/index", map[string]string{"Content-Type": "application/json"}, `{"reference":"`+ref+`"}`)
		if status != http.StatusBadRequest {
			t.Errorf("reference %s: HTTP %d %v, want 400", ref, status, out)
		}
	}

	// A Clair manifest whose layer URI names such a repository: refused at
	// once, or its report ends IndexError without a fetch.
	m := &report.Manifest{Hash: report.Digest("sha256:" + strings.Repeat("d", 64)), Layers: []*report.Layer{{
		Hash: report.Digest("sha256:" + d64), URI: h.reg.URL() + "/v2/../../x/blobs/sha256:" + d64}}}
	if _, err := h.client.IndexManifest(context.Background(), m); err == nil {
		if r := h.wait(m.Hash); r.State != report.StateIndexError || !strings.Contains(r.Err, "repository") {
			t.Errorf("layer URI with ..: state %s err %q, want IndexError naming the repository", r.State, r.Err)
		}
	} else if !strings.Contains(err.Error(), "400") {
		t.Errorf("layer URI with ..: %v, want 400 or an IndexError report", err)
	}

	// Webhooks: a Distribution event and a Quay push naming such a
	// repository queue nothing and ask the registry nothing.
	p := &pushed{repo: "../../x", tag: "1", digest: report.Digest("sha256:" + strings.Repeat("e", 64)),
		mediaType: "application/vnd.oci.image.manifest.v1+json", raw: []byte(`{}`)}
	status, out := h.post("/webhooks/distribution", distHeaders(eventsV2), envelope(distributionEvent(h.reg.Addr, p, "push", false)))
	if status >= 500 {
		t.Errorf("distribution event: HTTP %d %v", status, out)
	}
	quayAuth := quayHeaders()
	status, out = h.post("/webhooks/quay", quayAuth, quayPush(p, "1"))
	if status >= 500 {
		t.Errorf("quay event: HTTP %d %v", status, out)
	}
	// Give deferred tag lookups their retries' chance to reach the registry.
	time.Sleep(time.Second)
	if n := h.count(`SELECT count(*) FROM index_report WHERE manifest_hash = $1`, string(p.digest)); n != 0 {
		t.Errorf("a report for the event's digest was queued")
	}
	if d := log.dotted(); len(d) != 0 {
		t.Fatalf("the registry was asked %q", d)
	}
}

// TestRedirectToAnInternalServiceIsRefused: a layer URI on a host that
// redirects to a service on 127.0.0.1 (a listener standing for Postgres)
// fails the report without connecting there, with or without an
// allowlist, and the error reads the same whether the port is open or
// closed.
func TestRedirectToAnInternalServiceIsRefused(t *testing.T) {
	open := devregistry.NewTCPCounter(t)
	closedPort := closedport.Port(t)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /to/<port>/... redirects to that port on 127.0.0.1.
		port, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/to/"), "/")
		http.Redirect(w, r, "http://127.0.0.1:"+port+"/", http.StatusFound)
	}))
	defer redirector.Close()
	host := strings.TrimPrefix(redirector.URL, "http://")

	for _, tc := range []struct {
		name      string
		allowlist []string
		want      string
	}{
		{"no allowlist", nil, "loopback address"},
		{"allowlist", []string{host}, "neither an allowed registry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			cfg := h.config(1, true)
			cfg.Registries.Allowlist = tc.allowlist
			h.start(cfg)
			errs := map[int]string{}
			for i, port := range []int{open.Port(), closedPort} {
				l := &report.Layer{Hash: report.Digest(fmt.Sprintf("sha256:%064x", i+1)), URI: fmt.Sprintf("%s/to/%d/blob", redirector.URL, port)}
				m := manifestOf(l)
				r := h.indexWait(t, m)
				if r.State != report.StateIndexError || !strings.Contains(r.Err, tc.want) {
					t.Fatalf("port %d: state %s err %q, want IndexError with %q", port, r.State, r.Err, tc.want)
				}
				errs[port] = strings.NewReplacer(strconv.Itoa(port), "PORT", string(l.Hash), "LAYER").Replace(r.Err)
			}
			if n := open.Conns(); n != 0 {
				t.Fatalf("the postgres stand-in got %d connections", n)
			}
			if errs[open.Port()] != errs[closedPort] {
				t.Fatalf("the error tells an open port from a closed one:\n%s\n%s", errs[open.Port()], errs[closedPort])
			}
		})
	}
}

// TestStalledRegistryFreesTheWorker: a layer served a byte at a time (as a
// hostile or broken registry does) fails its fetch with the reason, frees
// the only worker for a normal image, and is retried with backoff until
// the job gives up.
func TestStalledRegistryFreesTheWorker(t *testing.T) {
	var slowRequests atomic.Int32
	good, err := devregistry.TarFromFiles(map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("a")})
	if err != nil {
		t.Fatal(err)
	}
	goodGz := gz(t, good)
	other, err := devregistry.TarFromFiles(map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("b")})
	if err != nil {
		t.Fatal(err)
	}
	slowGz := gz(t, other)
	blobs := newBlobServer(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slowRequests.Add(1)
		w.Header().Set("Content-Length", strconv.Itoa(len(slowGz)))
		w.WriteHeader(http.StatusOK)
		for i := range slowGz {
			w.Write(slowGz[i : i+1])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	defer slow.Close()

	h := newHarness(t)
	cfg := h.config(1, true)
	cfg.BlobStall.Idle = time.Second
	cfg.BlobStall.MinRate, cfg.BlobStall.Window = 1024, 500*time.Millisecond
	h.start(cfg)

	// The layer's digest is its content's: only the stall can fail it.
	stalled := manifestOf(&report.Layer{Hash: report.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256(slowGz))), URI: slow.URL + "/blob"})
	if _, err := h.client.IndexManifest(context.Background(), stalled); err != nil {
		t.Fatal(err)
	}
	normal := manifestOf(blobs.layer("good", goodGz, ""))
	if _, err := h.client.IndexManifest(context.Background(), normal); err != nil {
		t.Fatal(err)
	}
	if r := h.wait(normal.Hash); r.State != report.StateIndexFinished {
		t.Fatalf("normal image behind a stalled one: %s %q", r.State, r.Err)
	}
	r := h.wait(stalled.Hash)
	if r.State != report.StateIndexError || !strings.Contains(r.Err, "download stalled") || !strings.Contains(r.Err, "under the minimum") {
		t.Fatalf("stalled image: state %s err %q, want IndexError saying the download stalled", r.State, r.Err)
	}
	if n := slowRequests.Load(); n < 2 {
		t.Fatalf("the stalled layer was fetched %d times, want retries", n)
	}
}

// TestCredentialsNeverShown: a layer URI's user:password and a layer's
// header values appear in no answer, no report error, no log line, not in
// the job stream's store (sealed with the fleet's job key), and are not
// kept in the stored job once it is finished.
func TestCredentialsNeverShown(t *testing.T) {
	const (
		pass   = "s3cr3t-pass"
		token  = "s3cr3t-token"
		custom = "s3cr3t-custom"
	)
	secrets := []string{pass, token, custom}
	headers := http.Header{"Authorization": {"Bearer " + token}, "X-Registry-Auth": {custom}}
	// A hostile registry echoes what it was sent in its error. It holds its
	// first answer until the test has read the job stream's store, so the
	// job is pending in it then.
	fetched, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.Do(func() {
			close(fetched)
			<-release
		})
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "denied %s %s %s", r.Header.Get("Authorization"), r.Header.Get("X-Registry-Auth"), r.URL)
	}))
	defer echo.Close()
	blobs := newBlobServer(t)
	good, err := devregistry.TarFromFiles(map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("a")})
	if err != nil {
		t.Fatal(err)
	}

	var logs logbuf.Buffer
	h := newHarness(t)
	cfg := h.config(1, true)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Registries.Allowlist = []string{strings.TrimPrefix(echo.URL, "http://"), strings.TrimPrefix(blobs.srv.URL, "http://")}
	cfg.JobSecret = []byte(strings.Repeat("j", 32))
	h.start(cfg)

	withCreds := func(u string) string { return strings.Replace(u, "http://", "http://robot:"+pass+"@", 1) }

	// Refused by the registry, which echoes the credentials.
	denied := manifestOf(&report.Layer{Hash: report.Digest("sha256:" + strings.Repeat("1", 64)), URI: withCreds(echo.URL) + "/v2/app/blobs/sha256:" + strings.Repeat("1", 64), Headers: headers})
	// Fetched with its credentials, indexed.
	l := blobs.layer("good", gz(t, good), "")
	l.URI, l.Headers = withCreds(l.URI), headers
	finished := manifestOf(l)
	for _, m := range []*report.Manifest{denied, finished} {
		if _, err := h.client.IndexManifest(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-fetched:
		func() {
			defer close(release)
			if found := h.nats.StoreHolds(t, secrets...); len(found) > 0 {
				t.Errorf("the job stream's store holds %q", found)
			}
		}()
	case <-time.After(time.Minute):
		t.Fatal("the denied layer was not fetched within a minute")
	}
	if r := h.wait(denied.Hash); r.State != report.StateIndexError || !strings.Contains(r.Err, "401") {
		t.Fatalf("denied: %s %q", r.State, r.Err)
	} else {
		checkNoSecret(t, secrets, "the report's error", r.Err)
	}
	if r := h.wait(finished.Hash); r.State != report.StateIndexFinished {
		t.Fatalf("finished: %s %q", r.State, r.Err)
	}
	for _, m := range []*report.Manifest{denied, finished} {
		checkNoSecret(t, secrets, "GET index_report", getIndexReport(t, h, m.Hash))
		var job string
		if err := h.pool.QueryRow(context.Background(), `SELECT coalesce(job::text, '') FROM index_report WHERE manifest_hash = $1`, string(m.Hash)).Scan(&job); err != nil {
			t.Fatal(err)
		}
		checkNoSecret(t, secrets, "the stored job", job)
	}

	// Bad URIs with credentials are refused without echoing them.
	checkBadURIsRefused(t, h, strings.TrimPrefix(blobs.srv.URL, "http://"), pass, token, secrets)
	checkNoSecret(t, secrets, "the log", logs.String())
}

// checkNoSecret checks that text, shown in where, holds none of secrets.
func checkNoSecret(t *testing.T, secrets []string, where, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s shows %q: %s", where, s, text)
		}
	}
}

// getIndexReport gets the Clair index report of d, whatever the answer.
func getIndexReport(t *testing.T, h *harness, d report.Digest) string {
	resp, err := http.Get(h.api.URL + "/indexer/api/v1/index_report/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// checkBadURIsRefused posts manifests whose layer URI (with pass in its
// userinfo) is bad: each is refused without showing any of secrets.
func checkBadURIsRefused(t *testing.T, h *harness, blobsHost, pass, token string, secrets []string) {
	d64 := strings.Repeat("2", 64)
	for _, uri := range []string{"ftp://robot:" + pass + "@x.example/y", "http://robot:" + pass + "@" + blobsHost + "/%zz"} {
		body := `{"hash":"sha256:` + d64 + `","layers":[{"hash":"sha256:` + d64 + `","uri":"` + uri + `","headers":{"Authorization":["Bearer ` + token + `"]}}]}`
		resp, err := http.Post(h.api.URL+"/indexer/api/v1/index_report", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%s: HTTP %d, want an error", uri, resp.StatusCode)
		}
		checkNoSecret(t, secrets, fmt.Sprintf("the answer to %s (HTTP %d)", uri, resp.StatusCode), string(b))
	}
}
