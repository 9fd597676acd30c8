package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/report"
)

// The worker's ack/nak/term decisions without servers: in-memory fakes of
// the message, the leases, the indexer and the publisher. The real-server
// behaviour is held by internal/e2e (kill, race, queuefault, partial).

// fakeMsg is a job message that records its answer.
type fakeMsg struct {
	jetstream.Msg // not called: the worker uses the methods below
	data          []byte
	hdr           nats.Header
	delivered     uint64

	mu      sync.Mutex
	replies []string
}

func (m *fakeMsg) Data() []byte         { return m.data }
func (m *fakeMsg) Headers() nats.Header { return m.hdr }
func (m *fakeMsg) Subject() string      { return "index.jobs.x" }
func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: m.delivered}, nil
}
func (m *fakeMsg) reply(s string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.replies = append(m.replies, s)
	return nil
}
func (m *fakeMsg) DoubleAck(context.Context) error { return m.reply("ack") }
func (m *fakeMsg) TermWithReason(r string) error   { return m.reply("term: " + r) }
func (m *fakeMsg) NakWithDelay(d time.Duration) error {
	if d == 0 {
		return m.reply("nak now")
	}
	return m.reply("nak later")
}
func (m *fakeMsg) InProgress() error { return nil }

// fakeLease is a held lease whose loss the test decides.
type fakeLease struct {
	ctx      context.Context
	cancel   context.CancelCauseFunc
	released bool
}

func (l *fakeLease) Context() context.Context { return l.ctx }
func (l *fakeLease) Lost() bool               { return errors.Is(context.Cause(l.ctx), leases.ErrLost) }
func (l *fakeLease) Token() int64             { return 42 }
func (l *fakeLease) Release(context.Context) error {
	l.released = true
	l.cancel(errors.New("released"))
	return nil
}

type fakeLeases struct {
	err   error
	lease *fakeLease
}

func (f *fakeLeases) Take(ctx context.Context, _ string) (leases.Held, error) {
	if f.err != nil {
		return nil, f.err
	}
	lctx, cancel := context.WithCancelCause(ctx)
	f.lease = &fakeLease{ctx: lctx, cancel: cancel}
	return f.lease, nil
}

// fakeIndexer returns what the test says, and records the failures stored.
type fakeIndexer struct {
	run     func(l context.CancelCauseFunc) (*report.Report, error)
	leases  *fakeLeases
	fence   postgres.Fence
	failErr error
	failed  string
	// manifest is the one Index was given.
	manifest *report.Manifest
}

func (ix *fakeIndexer) Index(_ context.Context, f postgres.Fence, m *report.Manifest, _ indexer.Run) (*report.Report, error) {
	ix.fence, ix.manifest = f, m
	return ix.run(ix.leases.lease.cancel)
}

func (ix *fakeIndexer) Fail(_ context.Context, _ postgres.Fence, _ report.Digest, _ int, reason error) error {
	if ix.failErr != nil {
		return ix.failErr
	}
	ix.failed = reason.Error()
	return nil
}

type fakePublisher struct {
	scheduleErr error
	calls       []string
}

func (p *fakePublisher) Schedule(_ context.Context, _ *queue.Job, attempt int, _ time.Time) error {
	p.calls = append(p.calls, fmt.Sprintf("schedule attempt %d", attempt))
	return p.scheduleErr
}

func (p *fakePublisher) CancelRetry(context.Context, report.Digest) error {
	p.calls = append(p.calls, "cancel retry")
	return nil
}

func finished(context.CancelCauseFunc) (*report.Report, error) {
	return &report.Report{State: report.StateIndexFinished}, nil
}

func partial(context.CancelCauseFunc) (*report.Report, error) {
	next := time.Now().Add(time.Minute)
	return &report.Report{State: report.StateIndexPartial, NextRetry: &next}, nil
}

func failing(err error) func(context.CancelCauseFunc) (*report.Report, error) {
	return func(context.CancelCauseFunc) (*report.Report, error) { return nil, err }
}

// decisionCase is a delivery of a job, what leasing, indexing, the
// publisher and storing a failure do with it, and what must follow.
type decisionCase struct {
	name        string
	data        string // the job; empty: a valid one
	delivered   uint64
	leaseErr    error
	run         func(context.CancelCauseFunc) (*report.Report, error)
	scheduleErr error
	failErr     error
	shutdown    bool
	want        string // the message's answer; "" for none
	wantFailed  string // the IndexError reason stored
	wantCalls   string // the publisher's calls
}

func TestHandleDecisions(t *testing.T) {
	errNet := errors.New("registry: connection reset")
	for _, tc := range []decisionCase{
		{name: "malformed job", data: `{"manifest":`, want: "term: malformed job"},
		{name: "finished", run: finished, want: "ack", wantCalls: "cancel retry"},
		{name: "partial", run: partial, want: "ack", wantCalls: "schedule attempt 3"},
		{name: "partial, retry not stored", run: partial, scheduleErr: errNet, want: "nak later", wantCalls: "schedule attempt 3"},
		{name: "partial, retry not stored, last delivery", run: partial, scheduleErr: errNet, delivered: 5,
			want: "term: could not schedule the retry", wantCalls: "schedule attempt 3"},
		{name: "busy", leaseErr: &leases.BusyError{Digest: "d", Holder: "w2", Remaining: time.Second}, want: "nak later"},
		{name: "busy, last delivery", delivered: 5, leaseErr: &leases.BusyError{Digest: "d", Holder: "w2", Remaining: time.Second},
			want: "term: lease on d is held by w2"},
		{name: "lease error", leaseErr: errNet, want: "nak later"},
		{name: "lease lost", run: func(lose context.CancelCauseFunc) (*report.Report, error) {
			lose(leases.ErrLost)
			return nil, fmt.Errorf("write: %w", leases.ErrLost)
		}},
		{name: "lease lost after a partial", scheduleErr: errNet, run: func(lose context.CancelCauseFunc) (*report.Report, error) {
			lose(leases.ErrLost)
			return partial(lose)
		}, wantCalls: "schedule attempt 3"},
		{name: "transient failure", run: failing(errNet), want: "nak later"},
		{name: "transient failure, last delivery", delivered: 5, run: failing(errNet),
			want: "term: gave up after 5 deliveries", wantFailed: "gave up after 5 deliveries: registry: connection reset"},
		{name: "permanent failure", run: failing(fmt.Errorf("layer x: %w", layer.ErrBadLayer)),
			want: "term: layer x: bad layer", wantFailed: "layer x: bad layer"},
		{name: "permanent failure not recorded", run: failing(layer.ErrBadLayer), failErr: errNet, want: "nak later"},
		{name: "shutting down", shutdown: true, run: failing(context.Canceled), want: "nak now"},
		{name: "shutting down, last delivery", shutdown: true, delivered: 5, run: failing(context.Canceled),
			want: "term: worker shut down on the last delivery"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkDecision(t, tc) })
	}
}

// checkDecision has a worker handle tc's delivery, and checks its answer,
// the failure stored, the publisher's calls and the lease.
func checkDecision(t *testing.T, tc decisionCase) {
	m := &report.Manifest{Hash: report.Digest("sha256:" + strings.Repeat("a", 64)),
		Layers: []*report.Layer{{Hash: report.Digest("sha256:" + strings.Repeat("b", 64)), URI: "https://r.example/v2/x/blobs/sha256:" + strings.Repeat("b", 64)}}}
	data := []byte(tc.data)
	if tc.data == "" {
		data, _ = json.Marshal(&queue.Job{Manifest: m})
	}
	msg := &fakeMsg{data: data, hdr: nats.Header{queue.HeaderAttempt: []string{"2"}}, delivered: max(tc.delivered, 1)}
	ls := &fakeLeases{err: tc.leaseErr}
	ix := &fakeIndexer{run: tc.run, leases: ls, failErr: tc.failErr}
	pub := &fakePublisher{scheduleErr: tc.scheduleErr}
	w, err := New(Config{Consumer: fakeConsumer{}, Leases: ls, Indexer: ix, Publisher: pub, MaxDeliver: 5, Concurrency: 1, AckWait: 30 * time.Second,
		RetryBase: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if tc.shutdown {
		cancel()
	}
	w.handle(ctx, msg)
	got := strings.Join(msg.replies, "; ")
	if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) || len(msg.replies) > 1 {
		t.Errorf("answer %q, want %q", got, tc.want)
	}
	if ix.failed != tc.wantFailed {
		t.Errorf("stored failure %q, want %q", ix.failed, tc.wantFailed)
	}
	if calls := strings.Join(pub.calls, "; "); calls != tc.wantCalls {
		t.Errorf("publisher calls %q, want %q", calls, tc.wantCalls)
	}
	if ls.lease != nil {
		if !ls.lease.released {
			t.Error("lease not released")
		}
		if ix.run != nil && (ix.fence.Token != 42 || ix.fence.Digest != m.Hash) {
			t.Errorf("indexed under fence %+v, want the lease's", ix.fence)
		}
	}
}

// fakeConsumer is never pulled from: handle is called directly.
type fakeConsumer struct{ jetstream.Consumer }
