package e2e_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stevedore-dev/stevedore/report"
)

func TestOneTraceFollowsAJobFromRequestToReport(t *testing.T) {
	h := newHarness(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	cfg := h.config(1, true)
	cfg.TracerProvider = tp
	h.start(cfg)
	m := h.push("traced:1", map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("a")})
	if r := h.indexWait(t, m); r.State != report.StateIndexFinished {
		t.Fatalf("state %s", r.State)
	}
	// The worker's span ends after the ack, which follows the stored report.
	waitFor(t, "the worker's span to end", 30*time.Second, func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "process index.jobs.>" {
				return true
			}
		}
		return false
	})
	var root sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "POST /indexer/api/v1/index_report" {
			root = s
		}
	}
	if root == nil {
		t.Fatal("no span for the HTTP request")
	}
	want := []string{"publish index.jobs.>", "process index.jobs.>", "lease.acquire", "index manifest", "fetch and scan layer", "scan dpkg", "coalesce"}
	seen := map[string]bool{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == root.SpanContext().TraceID() {
			seen[s.Name()] = true
		}
	}
	for _, name := range want {
		if !seen[name] {
			t.Errorf("span %q is not in the request's trace (spans in it: %v)", name, seen)
		}
	}
}
