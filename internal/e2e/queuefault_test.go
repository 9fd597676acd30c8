package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/report"
)

// With the job stream unavailable (the NATS node holding it down: nothing
// answers on its subjects), a request is answered 503 naming the queue, not
// the registry, and no report is left waiting for a job that does not exist;
// once the stream is back, asking again indexes the image.
func TestFailedPublishAnswers503AndLeavesNoPhantom(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(0, true)) // dispatcher only
	m := h.push("phantom:1", map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("a")})
	if err := h.nats.JS.DeleteStream(context.Background(), queue.DefaultStream); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, body string }{
		{"reference", "/api/v1/index", `{"reference":"` + h.reg.Ref("phantom:1") + `"}`},
		{"clair manifest", "/indexer/api/v1/index_report", mustJSON(t, m)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, e := h.send("POST", tc.path, "application/json", tc.body)
			if status != http.StatusServiceUnavailable || e.Code != "unavailable" || !strings.Contains(e.Message, "job queue unavailable") {
				t.Fatalf("HTTP %d %s %q, want 503 unavailable naming the job queue", status, e.Code, e.Message)
			}
			if r, err := postgres.New(h.pool).Report(context.Background(), m.Hash); !errors.Is(err, postgres.ErrNotFound) {
				t.Fatalf("after a failed publish the manifest has a report (%v, %v), but no job", r, err)
			}
		})
	}
	// The stream is back (a node restarted): asking again queues the job.
	if _, err := queue.EnsureStream(context.Background(), h.nats.JS, queue.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.IndexManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	h.start(h.config(1, false))
	if r := h.wait(m.Hash); r.State != report.StateIndexFinished {
		t.Fatalf("state %s, err %q", r.State, r.Err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
