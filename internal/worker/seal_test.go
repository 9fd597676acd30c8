package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/report"
)

// TestHandleOpensSealedCredentials: a job whose layer credentials were
// sealed is indexed with them when the worker holds the publisher's key,
// and without them (a warning naming --job-secret-file, the job still run)
// when it holds another key or none.
func TestHandleOpensSealedCredentials(t *testing.T) {
	key := []byte(strings.Repeat("k", queue.MinJobSecret))
	pubSealer, err := queue.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	const token = "Bearer tok-secret"
	m := &report.Manifest{Hash: report.Digest("sha256:" + strings.Repeat("a", 64)),
		Layers: []*report.Layer{{Hash: report.Digest("sha256:" + strings.Repeat("b", 64)),
			URI: "https://r.example/v2/x/blobs/sha256:" + strings.Repeat("b", 64), Headers: http.Header{"Authorization": {token}}}}}
	sealed, err := pubSealer.Seal(&queue.Job{Manifest: m})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(sealed)
	for _, tc := range []struct {
		name       string
		sealer     func() *queue.Sealer
		wantHeader string
		wantWarn   string
	}{
		{"same key", func() *queue.Sealer { s, _ := queue.NewSealer(key); return s }, token, ""},
		{"another key", queue.NewRandomSealer, "", "cannot be opened with this key"},
		{"no key", func() *queue.Sealer { return nil }, "", "this worker has no job secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			msg := &fakeMsg{data: data, hdr: nats.Header{}, delivered: 1}
			ls := &fakeLeases{}
			ix := &fakeIndexer{run: finished, leases: ls}
			w, err := New(Config{Consumer: fakeConsumer{}, Leases: ls, Indexer: ix, Publisher: &fakePublisher{}, MaxDeliver: 5, Concurrency: 1,
				AckWait: 30 * time.Second, RetryBase: time.Millisecond, Sealer: tc.sealer(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil {
				t.Fatal(err)
			}
			w.handle(context.Background(), msg)
			if got := strings.Join(msg.replies, "; "); got != "ack" {
				t.Fatalf("answer %q, want ack", got)
			}
			if got := ix.manifest.Layers[0].Headers.Get("Authorization"); got != tc.wantHeader {
				t.Errorf("indexed with Authorization %q, want %q", got, tc.wantHeader)
			}
			if tc.wantWarn == "" && logs.Len() > 0 || !strings.Contains(logs.String(), tc.wantWarn) ||
				tc.wantWarn != "" && !strings.Contains(logs.String(), "--job-secret-file") {
				t.Errorf("log %q, want a warning saying %q", logs.String(), tc.wantWarn)
			}
			if strings.Contains(logs.String(), "tok-secret") {
				t.Errorf("the log shows the credential: %s", logs.String())
			}
		})
	}
}
