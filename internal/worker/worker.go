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
	"github.com/stevedore-dev/stevedore/report"
)

// Config configures a Worker.
type Config struct {
	Consumer jetstream.Consumer
	Leases   *leases.Manager
	Indexer  *indexer.Indexer
	// Publisher schedules the retries of partial reports.
	Publisher *queue.Publisher
	// Concurrency is how many jobs run at once; it is also how many
	// messages are pulled ahead.
	Concurrency int
	// AckWait and MaxDeliver must match the consumer's (see
	// queue.ConsumerConfig).
	AckWait    time.Duration
	MaxDeliver int
	// RetryBase is the first nak delay after a transient failure, doubled
	// per delivery.
	RetryBase      time.Duration
	TracerProvider trace.TracerProvider
	Logger         *slog.Logger
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
	return &Worker{cfg: cfg, log: cfg.Logger, prop: queue.Propagator(),
		tracer: cfg.TracerProvider.Tracer("github.com/stevedore-dev/stevedore/pkg/worker")}, nil
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

// handle runs one job message to its end: ack, nak, term, or left alone when
// the lease was lost.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	ctx = w.prop.Extract(ctx, queue.HeaderCarrier(msg.Headers()))
	ctx, span := w.tracer.Start(ctx, "process "+queue.JobSubjects, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", msg.Subject())))
	defer span.End()
	// Acks must go out even while shutting down.
	actx := context.WithoutCancel(ctx)

	delivered := uint64(1)
	if meta, err := msg.Metadata(); err == nil {
		delivered = meta.NumDelivered
	}
	span.SetAttributes(attribute.Int64("messaging.nats.delivered", int64(delivered)))
	job, err := queue.Decode(msg.Data())
	if err != nil {
		w.log.ErrorContext(ctx, "dropping a malformed job", "subject", msg.Subject(), "error", err)
		span.SetStatus(codes.Error, err.Error())
		w.reply(ctx, "term", msg.TermWithReason("malformed job: "+err.Error()))
		return
	}
	d := job.Manifest.Hash
	span.SetAttributes(attribute.String("stevedore.digest", string(d)))
	attempt := queue.Attempt(msg.Headers())
	log := w.log.With("digest", d, "delivery", delivered)

	lease, err := w.cfg.Leases.Acquire(ctx, string(d))
	var busy *leases.BusyError
	switch {
	case errors.As(err, &busy):
		delay := busy.Remaining + time.Duration(rand.Int64N(int64(time.Second)))
		who := "another worker"
		if busy.Self {
			who = "this worker, in a run still under way"
		}
		log.InfoContext(ctx, "manifest is leased by "+who+"; retrying later", "holder", busy.Holder, "self", busy.Self, "delay", delay)
		w.retryLater(ctx, msg, delivered, delay, busy.Error()+", which will finish it")
		return
	case err != nil:
		log.ErrorContext(ctx, "acquire lease", "error", err)
		span.SetStatus(codes.Error, err.Error())
		w.retryLater(ctx, msg, delivered, w.backoff(delivered), "could not take the lease: "+err.Error())
		return
	}
	defer func() {
		if err := lease.Release(actx); err != nil {
			log.WarnContext(ctx, "release lease", "error", err)
		}
	}()
	lctx := lease.Context()
	stopBeat := w.heartbeat(lctx, msg)
	fence := postgres.Fence{Digest: d, Token: lease.Fence}
	rep, err := w.cfg.Indexer.Index(lctx, fence, job.Manifest, indexer.Run{Attempt: attempt, Job: msg.Data(), Force: job.Force})
	if err == nil && rep.State == report.StateIndexPartial {
		// The retry must be stored before the job is acked.
		if serr := w.cfg.Publisher.Schedule(lctx, job, attempt+1, *rep.NextRetry); serr != nil && !lease.Lost() {
			stopBeat()
			log.ErrorContext(ctx, "schedule the retry of a partial report", "error", serr)
			w.retryLater(ctx, msg, delivered, w.backoff(delivered), "could not schedule the retry: "+serr.Error())
			return
		}
	}
	stopBeat()

	switch {
	case lease.Lost():
		log.WarnContext(ctx, "lease lost during the job; leaving the message to its new holder", "cause", context.Cause(lctx))
		span.SetStatus(codes.Error, "lease lost")
	case err == nil && rep.State == report.StateIndexPartial:
		log.WarnContext(ctx, "indexed partially; retry scheduled", "packages", len(rep.Packages),
			"reasons", len(rep.Partial), "attempt", attempt, "next_retry", rep.NextRetry)
		w.reply(ctx, "ack", msg.DoubleAck(actx))
	case err == nil:
		log.InfoContext(ctx, "indexed", "state", rep.State, "packages", len(rep.Packages))
		// A retry still scheduled (a partial that has now finished) would
		// only cost a run that finds the rep current.
		if cerr := w.cfg.Publisher.CancelRetry(actx, d); cerr != nil {
			log.WarnContext(ctx, "cancel pending retry", "error", cerr)
		}
		w.reply(ctx, "ack", msg.DoubleAck(actx))
	case ctx.Err() != nil:
		log.InfoContext(ctx, "shutting down; returning the job to the queue")
		w.retryLater(ctx, msg, delivered, 0, "worker shut down on the last delivery")
	case indexer.Permanent(err) || delivered >= uint64(w.cfg.MaxDeliver):
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		reason := err.Error()
		if !indexer.Permanent(err) {
			reason = fmt.Sprintf("gave up after %d deliveries: %v", delivered, err)
		}
		log.ErrorContext(ctx, "index failed", "error", reason)
		if ferr := w.cfg.Indexer.Fail(actx, fence, d, attempt, errors.New(reason)); ferr != nil {
			// Not recorded: leave the message for a redelivery rather
			// than lose the failure.
			log.ErrorContext(ctx, "record index failure", "error", ferr)
			w.retryLater(ctx, msg, delivered, w.backoff(delivered), "could not record the failure: "+ferr.Error())
			return
		}
		w.reply(ctx, "term", msg.TermWithReason(truncate(reason, 256)))
	default:
		span.RecordError(err)
		delay := w.backoff(delivered)
		log.WarnContext(ctx, "index failed; will retry", "error", err, "delay", delay)
		w.retryLater(ctx, msg, delivered, delay, err.Error())
	}
}

// heartbeat signals InProgress every AckWait/3 until the returned stop is
// called or ctx (the lease's) ends. stop waits for the signaller to exit, so
// no InProgress goes out after it returns.
func (w *Worker) heartbeat(ctx context.Context, msg jetstream.Msg) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					w.log.WarnContext(ctx, "signal in progress", "error", err)
				}
			}
		}
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
