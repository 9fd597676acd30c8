package e2e_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/pkg/devregistry"
	"github.com/stevedore-dev/stevedore/pkg/index"
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
	m := &index.Manifest{Hash: index.Digest("sha256:" + strings.Repeat("d", 64)), Layers: []*index.Layer{{
		Hash: index.Digest("sha256:" + d64), URI: h.reg.URL() + "/v2/../../x/blobs/sha256:" + d64}}}
	if _, err := h.client.IndexManifest(context.Background(), m); err == nil {
		if r := h.wait(m.Hash); r.State != index.StateIndexError || !strings.Contains(r.Err, "repository") {
			t.Errorf("layer URI with ..: state %s err %q, want IndexError naming the repository", r.State, r.Err)
		}
	} else if !strings.Contains(err.Error(), "400") {
		t.Errorf("layer URI with ..: %v, want 400 or an IndexError report", err)
	}

	// Webhooks: a Distribution event and a Quay push naming such a
	// repository queue nothing and ask the registry nothing.
	p := &pushed{repo: "../../x", tag: "1", digest: index.Digest("sha256:" + strings.Repeat("e", 64)),
		mediaType: "application/vnd.oci.image.manifest.v1+json", raw: []byte(`{}`)}
	status, out := h.post("/webhooks/distribution", distHeaders(eventsV2), envelope(distributionEvent(h.reg.Addr, p, "push", false)))
	if status >= 500 {
		t.Errorf("distribution event: HTTP %d %v", status, out)
	}
	quayAuth := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("quay:"+whToken)), "Content-Type": "application/json"}
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
