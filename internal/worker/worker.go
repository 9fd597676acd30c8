// Package worker takes index jobs from JetStream and runs them, one lease per
// manifest digest.
//
// For each job: take the lease (busy: nak with the remaining time plus
// jitter), signal InProgress every AckWait/3 while working, run the indexer
// under the lease's fence, then ack, then release the lease. A worker that
// lost its lease does not ack, nak or InProgress that message: another worker
// has it. A partial report (IndexPartial) is terminal for the job: the
// worker stores it, publishes a scheduled retry and waits for the server to
// store it, then acks, then releases the lease; a crash between those steps
// costs at most one extra run. A permanent failure (corrupt layer, missing
// blob, unreadable package database), or the last allowed delivery, stores an
// IndexError report with the reason and terminates the message; other
// failures nak with backoff.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/telemetry"
	"github.com/stevedore-dev/stevedore/internal/tick"
	"github.com/stevedore-dev/stevedore/report"
)

// Config configures a Worker.
type Config struct {
	Consumer jetstream.Consumer
	// Leases gives one worker at a time a manifest (*leases.Manager in
	// production).
	Leases Leases
	// Indexer runs a job under its lease's fence (*indexer.Indexer in
	// production).
	Indexer Indexer
	// Publisher schedules the retries of partial reports
	// (*queue.Publisher in production).
	Publisher Publisher
	// Concurrency is how many jobs run at once ; it is also how
	// many messages are pulled ahead.
	Concurrency int
	// AckWait and MaxDeliver must match the consumer's (see
	// queue.ConsumerConfig).
	AckWait    time.Duration
	MaxDeliver int
	// RetryBase is the first nak delay after a transient failure, doubled
	// per delivery.
	RetryBase time.Duration
	// Sealer opens the layer credentials a job carries sealed (the
	// publishers' key). Nil, or a job sealed with another key: the job
	// runs without them, with the process's own registry credentials.
	Sealer         *queue.Sealer
	TracerProvider trace.TracerProvider
	Logger         *slog.Logger
}

// Leases is what the worker needs of leases (internal/postgres/leases).
type Leases interface {
	// Take takes the lease on digest, or returns a *leases.BusyError
	// when another holder has it.
	Take(ctx context.Context, digest string) (leases.Held, error)
}

// Indexer is what the worker needs of the indexer (internal/indexer).
type Indexer interface {
	// Index runs manifest m under fence f and returns its final report.
	Index(ctx context.Context, f postgres.Fence, m *report.Manifest, run indexer.Run) (*report.Report, error)
	// Fail stores an IndexError report with the reason under fence f.
	Fail(ctx context.Context, f postgres.Fence, d report.Digest, attempt int, reason error) error
}

// Publisher is what the worker needs of the job queue (internal/queue).
type Publisher interface {
	// Schedule stores the retry of job j, run number attempt, due at.
	Schedule(ctx context.Context, j *queue.Job, attempt int, at time.Time) error
	// CancelRetry drops a retry of d still scheduled.
	CancelRetry(ctx context.Context, d report.Digest) error
}

// Worker runs index jobs.
type Worker struct {
	cfg    Config
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	log    *slog.Logger
}

// New returns a Worker.
func New(cfg Config) (*Worker, error) {
	if cfg.Consumer == nil || cfg.Leases == nil || cfg.Indexer == nil || cfg.Publisher == nil {
		return nil, errors.New("new worker: consumer, leases, indexer and publisher are required")
	}
	if cfg.Concurrency <= 0 || cfg.AckWait <= 0 || cfg.MaxDeliver <= 0 || cfg.RetryBase <= 0 {
		return nil, fmt.Errorf("new worker: concurrency %d, ack wait %s, max deliver %d and retry base %s must be above zero (internal/app has the defaults)",
			cfg.Concurrency, cfg.AckWait, cfg.MaxDeliver, cfg.RetryBase)
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Worker{cfg: cfg, log: cfg.Logger, prop: telemetry.Propagator(),
		tracer: cfg.TracerProvider.Tracer("github.com/stevedore-dev/stevedore/internal/worker")}, nil
}

// Run takes and runs jobs until ctx is cancelled, then waits for the jobs
// under way to stop (they are cancelled and naked, so another worker can take
// them at once).
func (w *Worker) Run(ctx context.Context) error {
	it, err := w.cfg.Consumer.Messages(jetstream.PullMaxMessages(w.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("worker: pull jobs: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	slots := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			w.log.WarnContext(ctx, "pull job", "error", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			w.handle(ctx, msg)
		}()
	}
}

// delivery is one delivery of a job message, as handle sees it.
type delivery struct {
	msg       jetstream.Msg
	job       *queue.Job
	delivered uint64
	attempt   int
	log       *slog.Logger
	span      trace.Span
}

// handle runs one job message to its end: ack, nak, term, or left alone when
// the lease was lost.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	ctx = w.prop.Extract(ctx, telemetry.HeaderCarrier(msg.Headers()))
	ctx, span := w.tracer.Start(ctx, "process "+queue.JobSubjects, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", msg.Subject())))
	defer span.End()
	// Acks must go out even while shutting down.
	actx := context.WithoutCancel(ctx)

	dl := &delivery{msg: msg, delivered: 1, span: span}
	if meta, err := msg.Metadata(); err == nil {
		dl.delivered = meta.NumDelivered
	}
	span.SetAttributes(attribute.Int64("messaging.nats.delivered", int64(dl.delivered)))
	job, err := queue.Decode(msg.Data())
	if err != nil {
		w.log.ErrorContext(ctx, "dropping a malformed job", "subject", msg.Subject(), "error", err)
		span.SetStatus(codes.Error, err.Error())
		w.reply(ctx, "term", msg.TermWithReason("malformed job: "+err.Error()))
		return
	}
	w.open(ctx, job)
	dl.job = job
	span.SetAttributes(attribute.String("stevedore.digest", string(job.Manifest.Hash)))
	dl.attempt = queue.Attempt(msg.Headers())
	dl.log = w.log.With("digest", job.Manifest.Hash, "delivery", dl.delivered)

	lease := w.acquire(ctx, dl)
	if lease == nil {
		return
	}
	defer func() {
		if err := lease.Release(actx); err != nil {
			dl.log.WarnContext(ctx, "release lease", "error", err)
		}
	}()
	w.run(ctx, dl, lease)
}

// acquire takes the lease on dl's manifest. When it cannot (busy, or an
// error), it returns nil and has naked dl for later.
func (w *Worker) acquire(ctx context.Context, dl *delivery) leases.Held {
	lease, err := w.cfg.Leases.Take(ctx, string(dl.job.Manifest.Hash))
	var busy *leases.BusyError
	switch {
	case errors.As(err, &busy):
		delay := busy.Remaining + time.Duration(rand.Int64N(int64(time.Second)))
		who := "another worker"
		if busy.Self {
			who = "this worker, in a run still under way"
		}
		dl.log.InfoContext(ctx, "manifest is leased by "+who+"; retrying later", "holder", busy.Holder, "self", busy.Self, "delay", delay)
		w.retryLater(ctx, dl.msg, dl.delivered, delay, busy.Error()+", which will finish it")
		return nil
	case err != nil:
		dl.log.ErrorContext(ctx, "acquire lease", "error", err)
		dl.span.SetStatus(codes.Error, err.Error())
		w.retryLater(ctx, dl.msg, dl.delivered, w.backoff(dl.delivered), "could not take the lease: "+err.Error())
		return nil
	}
	return lease
}

// run indexes dl's manifest under lease, signalling InProgress meanwhile,
// stores the retry of a partial report, and settles the message.
func (w *Worker) run(ctx context.Context, dl *delivery, lease leases.Held) {
	lctx := lease.Context()
	stopBeat := w.heartbeat(lctx, dl.msg)
	fence := postgres.Fence{Digest: dl.job.Manifest.Hash, Token: lease.Token()}
	rep, err := w.cfg.Indexer.Index(lctx, fence, dl.job.Manifest, indexer.Run{Attempt: dl.attempt, Job: dl.msg.Data(), Force: dl.job.Force})
	if err == nil && rep.State == report.StateIndexPartial {
		// The retry must be stored before the job is acked.
		if serr := w.cfg.Publisher.Schedule(lctx, dl.job, dl.attempt+1, *rep.NextRetry); serr != nil && !lease.Lost() {
			stopBeat()
			dl.log.ErrorContext(ctx, "schedule the retry of a partial report", "error", serr)
			w.retryLater(ctx, dl.msg, dl.delivered, w.backoff(dl.delivered), "could not schedule the retry: "+serr.Error())
			return
		}
	}
	stopBeat()
	w.settle(ctx, dl, lease, fence, rep, err)
}

// settle answers dl after its run (report rep, or err): nothing when the
// lease was lost, ack when it ran, nak to retry, term (after storing an
// IndexError report) for a permanent failure or the last delivery.
func (w *Worker) settle(ctx context.Context, dl *delivery, lease leases.Held, fence postgres.Fence, rep *report.Report, err error) {
	actx := context.WithoutCancel(ctx)
	switch {
	case lease.Lost():
		dl.log.WarnContext(ctx, "lease lost during the job; leaving the message to its new holder", "cause", context.Cause(lease.Context()))
		dl.span.SetStatus(codes.Error, "lease lost")
	case err == nil && rep.State == report.StateIndexPartial:
		dl.log.WarnContext(ctx, "indexed partially; retry scheduled", "packages", len(rep.Packages),
			"reasons", len(rep.Partial), "attempt", dl.attempt, "next_retry", rep.NextRetry)
		w.reply(ctx, "ack", dl.msg.DoubleAck(actx))
	case err == nil:
		dl.log.InfoContext(ctx, "indexed", "state", rep.State, "packages", len(rep.Packages))
		// A retry still scheduled (a partial that has now finished) would
		// only cost a run that finds the rep current.
		if cerr := w.cfg.Publisher.CancelRetry(actx, fence.Digest); cerr != nil {
			dl.log.WarnContext(ctx, "cancel pending retry", "error", cerr)
		}
		w.reply(ctx, "ack", dl.msg.DoubleAck(actx))
	case ctx.Err() != nil:
		dl.log.InfoContext(ctx, "shutting down; returning the job to the queue")
		w.retryLater(ctx, dl.msg, dl.delivered, 0, "worker shut down on the last delivery")
	case indexer.Permanent(err) || dl.delivered >= uint64(w.cfg.MaxDeliver):
		w.fail(ctx, dl, fence, err)
	default:
		dl.span.RecordError(err)
		delay := w.backoff(dl.delivered)
		dl.log.WarnContext(ctx, "index failed; will retry", "error", err, "delay", delay)
		w.retryLater(ctx, dl.msg, dl.delivered, delay, err.Error())
	}
}

// fail stores an IndexError report for dl's manifest with the reason of err
// and terminates the message; when the report cannot be stored, it naks
// the message instead, to record the failure on a redelivery.
func (w *Worker) fail(ctx context.Context, dl *delivery, fence postgres.Fence, err error) {
	dl.span.RecordError(err)
	dl.span.SetStatus(codes.Error, err.Error())
	reason := err.Error()
	if !indexer.Permanent(err) {
		reason = fmt.Sprintf("gave up after %d deliveries: %v", dl.delivered, err)
	}
	dl.log.ErrorContext(ctx, "index failed", "error", reason)
	if ferr := w.cfg.Indexer.Fail(context.WithoutCancel(ctx), fence, fence.Digest, dl.attempt, errors.New(reason)); ferr != nil {
		// Not recorded: leave the message for a redelivery rather
		// than lose the failure.
		dl.log.ErrorContext(ctx, "record index failure", "error", ferr)
		w.retryLater(ctx, dl.msg, dl.delivered, w.backoff(dl.delivered), "could not record the failure: "+ferr.Error())
		return
	}
	w.reply(ctx, "term", dl.msg.TermWithReason(truncate(reason, 256)))
}

// heartbeat signals InProgress every AckWait/3 until the returned stop is
// called or ctx (the lease's) ends. stop waits for the signaller to exit, so
// no InProgress goes out after it returns.
func (w *Worker) heartbeat(ctx context.Context, msg jetstream.Msg) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick.Every(ctx, w.cfg.AckWait/3, func() {
			if err := msg.InProgress(); err != nil {
				w.log.WarnContext(ctx, "signal in progress", "error", err)
			}
		})
	}()
	return func() { cancel(); <-done }
}

// retryLater naks msg with delay, unless this was its last allowed delivery:
// a message naked then would stay in the work-queue stream undeliverable and
// block new jobs for its digest, so it is terminated with the reason instead
// (the stored report is not current, so the next request queues it again).
func (w *Worker) retryLater(ctx context.Context, msg jetstream.Msg, delivered uint64, delay time.Duration, reason string) {
	if delivered >= uint64(w.cfg.MaxDeliver) {
		w.log.WarnContext(ctx, "last delivery; terminating the job", "subject", msg.Subject(), "reason", reason)
		w.reply(ctx, "term", msg.TermWithReason(truncate(reason, 256)))
		return
	}
	w.reply(ctx, "nak", msg.NakWithDelay(delay))
}

func (w *Worker) backoff(delivered uint64) time.Duration {
	d := w.cfg.RetryBase << min(delivered-1, 10)
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}

func (w *Worker) reply(ctx context.Context, what string, err error) {
	if err != nil {
		w.log.WarnContext(ctx, what+" job message", "error", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// open puts back the layer credentials sealed in job. Those it cannot open
// are dropped: the job runs with the process's own registry credentials
// (a registry that needs the request's fails the fetch with its 401, as a
// re-index does).
func (w *Worker) open(ctx context.Context, job *queue.Job) {
	if len(job.Sealed) == 0 {
		return
	}
	err := errors.New("this worker has no job secret")
	if w.cfg.Sealer != nil {
		if err = w.cfg.Sealer.Open(job); err == nil {
			return
		}
	}
	w.log.WarnContext(ctx, "running a job without the layer credentials it carries: give dispatchers and workers the same --job-secret-file",
		"digest", job.Manifest.Hash, "error", err)
	job.Sealed = nil
}
