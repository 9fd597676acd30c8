package queue_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/telemetry"
	"github.com/stevedore-dev/stevedore/internal/testing/natstest"
	"github.com/stevedore-dev/stevedore/report"
)

func job(hexChar string) *queue.Job {
	d := report.Digest("sha256:" + strings.Repeat(hexChar, 64))
	return &queue.Job{
		Manifest: &report.Manifest{Hash: d, Layers: []*report.Layer{{
			Hash: report.Digest("sha256:" + strings.Repeat("0", 64)), URI: "http://127.0.0.1/v2/x/blobs/sha256:" + strings.Repeat("0", 64)}}},
		ScannerState: "s1",
	}
}

func TestConcurrentDuplicatePublishesMakeOneJob(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	stream, err := queue.EnsureStream(ctx, srv.JS, queue.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pub := queue.NewPublisher(srv.JS, nil)
	var wg sync.WaitGroup
	outcomes := make([]queue.Outcome, 50)
	errs := make([]error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcomes[i], errs[i] = pub.Publish(ctx, job("a"))
		}()
	}
	wg.Wait()
	queued := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if outcomes[i] == queue.Queued {
			queued++
		}
	}
	if queued != 1 {
		t.Fatalf("%d publishes queued a job, want 1", queued)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1", info.State.Msgs)
	}
	// Another digest is independent.
	if out, err := pub.Publish(ctx, job("b")); err != nil || out != queue.Queued {
		t.Fatalf("other digest: %v %v", out, err)
	}

	// Once the job is acked, a new one for the same digest (new state, so a
	// new msg id) can be queued.
	cons, err := queue.EnsureConsumer(ctx, srv.JS, queue.ConsumerConfig{AckWait: 30 * time.Second, MaxDeliver: 5})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("fetched %d jobs, want 2", n)
	}
	j := job("a")
	j.ScannerState = "s2"
	if out, err := pub.Publish(ctx, j); err != nil || out != queue.Queued {
		t.Fatalf("publish after ack: %v %v", out, err)
	}
}

func TestTraceContextTravelsInHeaders(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	if _, err := queue.EnsureStream(ctx, srv.JS, queue.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(ctx, "request")
	defer span.End()
	if _, err := queue.NewPublisher(srv.JS, tp).Publish(ctx, job("c")); err != nil {
		t.Fatal(err)
	}
	m := nextJob(t, srv.JS)
	h := m.Headers()
	if _, ok := h["traceparent"]; !ok {
		t.Fatalf("no lowercase traceparent header in %v", h)
	}
	got := trace.SpanContextFromContext(telemetry.Propagator().Extract(context.Background(), telemetry.HeaderCarrier(h)))
	if got.TraceID() != span.SpanContext().TraceID() {
		t.Fatalf("trace id %s, want %s", got.TraceID(), span.SpanContext().TraceID())
	}
	if queue.Attempt(h) != 1 || queue.Attempt(nats.Header{}) != 1 {
		t.Fatal("attempt header")
	}
	var _ propagation.TextMapCarrier = telemetry.HeaderCarrier(h)
	if _, err := queue.Decode(m.Data()); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRejectsBadJobs(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"not json", "{", "decode job"},
		{"no manifest", `{}`, "manifest: missing"},
		{"bad digest", `{"manifest":{"hash":"sha256:xyz","layers":[]}}`, "manifest hash"},
		{"no layers", `{"manifest":{"hash":"sha256:` + strings.Repeat("a", 64) + `","layers":[]}}`, "no layers"},
		{"bad uri", `{"manifest":{"hash":"sha256:` + strings.Repeat("a", 64) + `","layers":[{"hash":"sha256:` + strings.Repeat("b", 64) + `","uri":"file:///etc/passwd"}]}}`, "layers[0].uri"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := queue.Decode([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestEnsureConsumerTakesItsSettings: the consumer has no defaults of its own
// (internal/app has them); zero settings are refused, not guessed.
func TestEnsureConsumerTakesItsSettings(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	if _, err := queue.EnsureStream(ctx, srv.JS, queue.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []queue.ConsumerConfig{{}, {AckWait: time.Second}, {MaxDeliver: 1}} {
		if _, err := queue.EnsureConsumer(ctx, srv.JS, cfg); err == nil || !strings.Contains(err.Error(), "above zero") {
			t.Errorf("EnsureConsumer(%+v): %v, want an error saying the settings must be above zero", cfg, err)
		}
	}
	cons, err := queue.EnsureConsumer(ctx, srv.JS, queue.ConsumerConfig{AckWait: 7 * time.Second, MaxDeliver: 3})
	if err != nil {
		t.Fatal(err)
	}
	if c := cons.CachedInfo().Config; c.AckWait != 7*time.Second || c.MaxDeliver != 3 {
		t.Fatalf("consumer has ack wait %s, max deliver %d; want 7s, 3", c.AckWait, c.MaxDeliver)
	}
}

// nextJob takes the next job message through the workers' consumer.
func nextJob(t *testing.T, js jetstream.JetStream) jetstream.Msg {
	t.Helper()
	cons, err := queue.EnsureConsumer(context.Background(), js, queue.ConsumerConfig{AckWait: 30 * time.Second, MaxDeliver: 5})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// EnsureStream creates the stream, finds it current (a restart), and
// updates it when its configuration changed.
func TestEnsureStreamCreatesKeepsAndUpdates(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	for _, tc := range []struct {
		name   string
		window time.Duration
	}{
		{"new", time.Minute},
		{"current", time.Minute},
		{"changed", 3 * time.Minute},
	} {
		s, err := queue.EnsureStream(ctx, srv.JS, queue.StreamConfig{DuplicateWindow: tc.window})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if info.Config.Duplicates != tc.window || info.Config.Retention != jetstream.WorkQueuePolicy {
			t.Errorf("%s: duplicate window %s, retention %s; want %s, work queue", tc.name, info.Config.Duplicates, info.Config.Retention, tc.window)
		}
	}
}
