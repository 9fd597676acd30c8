// Package queue is the index job queue on NATS JetStream: the stream and the
// workers' consumer, the job message, and publishing with dedup.
//
// One job per manifest digest is pending at most: jobs go to a subject per
// digest (index.jobs.<hex>) and are published with an expected last sequence
// of 0 for that subject, so a second publish while one is pending fails with
// JetStream error 10071, which Publish reports as AlreadyQueued. A Nats-Msg-Id
// of digest, scanner-set state and the job's generation (one per decision to
// queue) drops a publish repeated after a lost answer. The decision itself is
// made in Postgres under the report row's lock (postgres.Enqueue), serialised
// with the worker's final write, so a request racing the end of a job queues
// no second one. Final idempotency lives in Postgres (the lease and the
// stored report).
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/stevedore-dev/stevedore/internal/telemetry"
	"github.com/stevedore-dev/stevedore/internal/tick"
	"github.com/stevedore-dev/stevedore/report"
)

// Subjects and headers.
const (
	// DefaultStream is the stream's name.
	DefaultStream = "STEVEDORE_INDEX"
	// JobSubjects is what the workers' consumer filters on.
	JobSubjects = "index.jobs.>"
	// RetrySubjects carries scheduled retries (see the partial-results
	// design); workers never consume them directly.
	RetrySubjects = "index.retry.>"
	// DefaultConsumer is the workers' durable consumer.
	DefaultConsumer = "stevedore-workers"
	// HeaderAttempt carries the attempt count of a job.
	HeaderAttempt = "Stevedore-Attempt"
)

// JobSubject is the subject of the job for manifest d.
func JobSubject(d report.Digest) string { return "index.jobs." + d.Hex() }

// RetrySubject is the subject of the scheduled retry for manifest d.
func RetrySubject(d report.Digest) string { return "index.retry." + d.Hex() }

// Job asks a worker to index one manifest.
type Job struct {
	Manifest *report.Manifest `json:"manifest"`
	// ScannerState is the scanner-set state the dispatcher saw.
	ScannerState string `json:"scanner_state"`
	// RequestedAt is when the dispatcher queued the job.
	RequestedAt time.Time `json:"requested_at"`
	// Generation names the decision that queued the job (the dispatcher's
	// is random, a re-index sweep's is its time): it goes into the
	// Nats-Msg-Id, so that a publish repeated after a lost answer is
	// dropped but a new decision is not.
	Generation string `json:"generation,omitempty"`
	// Force runs the job even when the stored report is current (a
	// re-index an operator asked for): stored layer results are still
	// reused, the report is coalesced and enriched again.
	Force bool `json:"force,omitempty"`
	// Sealed holds the credentials of the manifest's layers, encrypted by
	// the publisher's Sealer (see Sealer.Seal); empty when they carry none
	// or the publisher has no Sealer.
	Sealed []byte `json:"sealed,omitempty"`
}

// MaxJobSize bounds an encoded job.
const MaxJobSize = 1 << 20

// Decode parses and validates a job message body.
func Decode(data []byte) (*Job, error) {
	if len(data) > MaxJobSize {
		return nil, fmt.Errorf("decode job: %d bytes, more than %d", len(data), MaxJobSize)
	}
	j := new(Job)
	if err := json.Unmarshal(data, j); err != nil {
		return nil, fmt.Errorf("decode job: %w", err)
	}
	if err := j.Manifest.Validate(); err != nil {
		return nil, fmt.Errorf("decode job: %w", err)
	}
	return j, nil
}

// StreamConfig configures the job stream.
type StreamConfig struct {
	Name string
	// Replicas of the stream (and of the workers' consumer, which follows
	// it). 0: DefaultReplicas for the connected server, 3 when it is part
	// of a cluster, 1 otherwise (an embedded or single server).
	Replicas int
	// DuplicateWindow is how long a Nats-Msg-Id is remembered (default 2m).
	DuplicateWindow time.Duration
}

// EnsureStream creates or updates the job stream: work-queue retention (a job
// is gone once acked), file storage, message schedules allowed (for delayed
// retries; needs nats-server 2.12 or newer).
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultStream
	}
	auto := cfg.Replicas == 0
	if auto {
		cfg.Replicas = DefaultReplicas(js.Conn())
	}
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("create stream %s: %d replicas: want 1 to 5", cfg.Name, cfg.Replicas)
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = 2 * time.Minute
	}
	sc := jetstream.StreamConfig{
		Name:              cfg.Name,
		Description:       "Stevedore index jobs",
		Subjects:          []string{JobSubjects, RetrySubjects},
		Retention:         jetstream.WorkQueuePolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		Duplicates:        cfg.DuplicateWindow,
		AllowMsgSchedules: true,
	}
	s, err := createOrUpdateStream(ctx, js, sc)
	if err != nil && auto && sc.Replicas > 1 && tooFewPeers(err) {
		// A cluster of fewer JetStream servers than the default asks
		// for: as many as it has would not survive losing one either,
		// so take one (the caller logs the count it got).
		sc.Replicas = 1
		s, err = createOrUpdateStream(ctx, js, sc)
	}
	if err != nil {
		return nil, fmt.Errorf("create stream %s with %d replicas (needs nats-server >= 2.12 with JetStream, and as many servers as replicas): %w", cfg.Name, cfg.Replicas, err)
	}
	return s, nil
}

// createOrUpdateStream creates the stream, or updates it when it exists
// with another configuration, in one request when it is new (a temporary
// store's) or current (a restart's): the server answers a create of a
// stream that exists with the same configuration with the stream as it is.
// jetstream's CreateOrUpdateStream asks for an update first, and for a new
// stream then for a create: two requests.
func createOrUpdateStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateStream(ctx, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.UpdateStream(ctx, sc)
	}
	return s, err
}

// tooFewPeers reports whether a stream could not be placed for want of
// servers: no suitable peers (10005), insufficient resources (10023),
// replicas not supported without a cluster (10074).
func tooFewPeers(err error) bool {
	var jsErr jetstream.JetStreamError
	if !errors.As(err, &jsErr) || jsErr.APIError() == nil {
		return false
	}
	switch jsErr.APIError().ErrorCode {
	case 10005, 10023, 10074:
		return true
	}
	return false
}

// DefaultReplicas is the job stream's replica count for the server nc is
// connected to: 3 when it is part of a cluster (so that losing one node
// loses no job and stops no publish for longer than a leader election), 1
// for a single or embedded server.
func DefaultReplicas(nc *nats.Conn) int {
	if nc != nil && nc.ConnectedClusterName() != "" {
		return 3
	}
	return 1
}

// ConsumerConfig configures the workers' durable consumer.
type ConsumerConfig struct {
	Stream string
	Name   string
	// AckWait is how long a delivered job may go without an ack or an
	// in-progress signal before it is redelivered (required; internal/app
	// has the default).
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one job (required).
	MaxDeliver int
}

// EnsureConsumer creates or updates the workers' pull consumer. It filters
// job subjects only: a consumer that saw the scheduled retry messages and
// acked them would delete the schedules.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig) (jetstream.Consumer, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Name == "" {
		cfg.Name = DefaultConsumer
	}
	if cfg.AckWait <= 0 || cfg.MaxDeliver <= 0 {
		return nil, fmt.Errorf("create consumer %s on %s: ack wait %s and max deliver %d must be above zero", cfg.Name, cfg.Stream, cfg.AckWait, cfg.MaxDeliver)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       cfg.Name,
		Description:   "Stevedore workers",
		FilterSubject: JobSubjects,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", cfg.Name, cfg.Stream, err)
	}
	return c, nil
}

// Outcome says what a publish did.
type Outcome int

// Publish outcomes.
const (
	// Queued: a new job is pending.
	Queued Outcome = iota
	// AlreadyQueued: a job for the digest was already pending; nothing new.
	AlreadyQueued
	// Duplicate: the same job was published within the duplicate window.
	Duplicate
)

func (o Outcome) String() string {
	switch o {
	case Queued:
		return "queued"
	case AlreadyQueued:
		return "already-queued"
	case Duplicate:
		return "duplicate"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Publisher publishes jobs.
type Publisher struct {
	js     jetstream.JetStream
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	sealer *Sealer
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// WithSealer makes the publisher seal the credentials of every job's
// layers with s before the job enters the stream (nil: they go as they
// are).
func WithSealer(s *Sealer) PublisherOption { return func(p *Publisher) { p.sealer = s } }

// NewPublisher returns a publisher on js, tracing with tp (nil: the global
// provider).
func NewPublisher(js jetstream.JetStream, tp trace.TracerProvider, opts ...PublisherOption) *Publisher {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	p := &Publisher{js: js, tracer: tp.Tracer("github.com/stevedore-dev/stevedore/internal/queue"), prop: telemetry.Propagator()}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Publish queues j unless a job for the same manifest is already pending.
func (p *Publisher) Publish(ctx context.Context, j *Job) (Outcome, error) {
	d := j.Manifest.Hash
	subj := JobSubject(d)
	ctx, span := p.startSpan(ctx, "publish "+JobSubjects, subj, d)
	defer span.End()
	msg, err := p.jobMsg(ctx, subj, j, 1)
	if err != nil {
		return 0, fmt.Errorf("publish job for %s: %w", d, err)
	}
	ack, err := p.publish(ctx, msg,
		jetstream.WithMsgID(string(d)+"/"+j.ScannerState+"/"+j.Generation),
		jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil {
		var jsErr jetstream.JetStreamError
		if errors.As(err, &jsErr) && jsErr.APIError() != nil &&
			(jsErr.APIError().ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
				jsErr.APIError().ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			span.SetAttributes(attribute.String("stevedore.publish.outcome", AlreadyQueued.String()))
			return AlreadyQueued, nil
		}
		span.RecordError(err)
		return 0, fmt.Errorf("publish job for %s to %s: %w", d, subj, err)
	}
	out := Queued
	if ack.Duplicate {
		out = Duplicate
	}
	span.SetAttributes(attribute.String("stevedore.publish.outcome", out.String()))
	return out, nil
}

// startSpan opens the producer span name of a job message on subj for
// manifest d, with attrs besides the messaging ones.
func (p *Publisher) startSpan(ctx context.Context, name, subj string, d report.Digest, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs = append([]attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.destination.name", subj),
		attribute.String("stevedore.digest", string(d)),
	}, attrs...)
	return p.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
}

// jobMsg is j as a message on subj, its attempt number and ctx's trace
// context in its headers, its layers' credentials sealed when p has a
// Sealer.
func (p *Publisher) jobMsg(ctx context.Context, subj string, j *Job, attempt int) (*nats.Msg, error) {
	if p.sealer != nil {
		var err error
		if j, err = p.sealer.Seal(j); err != nil {
			return nil, err
		}
	}
	body, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(subj)
	msg.Data = body
	msg.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	p.prop.Inject(ctx, telemetry.HeaderCarrier(msg.Header))
	return msg, nil
}

// Publish retries: while a stream's leader is being elected (its node died)
// nothing answers on the stream's subjects, or the answer times out. A
// publish is tried again, each attempt bounded, until it is answered or
// publishRetryFor (or the caller's deadline) has passed. Every attempt has
// the same Nats-Msg-Id, so an attempt whose answer was lost but that was
// stored makes the next one a duplicate, not a second message.
const (
	publishAttemptTimeout = 2 * time.Second
	publishRetryFor       = 8 * time.Second
	publishRetryWait      = 100 * time.Millisecond
)

// publish publishes msg, retrying while the stream does not answer.
func (p *Publisher) publish(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(ctx, publishRetryFor)
	defer cancel()
	wait := publishRetryWait
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, publishAttemptTimeout)
		ack, err := p.js.PublishMsg(actx, msg, opts...)
		acancel()
		if err == nil || !unanswered(err) || ctx.Err() != nil {
			if err != nil && attempt > 1 {
				err = fmt.Errorf("%d attempts: %w", attempt, err)
			}
			return ack, err
		}
		trace.SpanFromContext(ctx).AddEvent("publish not answered; retrying", trace.WithAttributes(
			attribute.Int("attempt", attempt), attribute.String("error", err.Error())))
		if !tick.Sleep(ctx, wait) {
			return nil, fmt.Errorf("%d attempts: %w", attempt, err)
		}
		wait = min(2*wait, time.Second)
	}
}

// unanswered reports whether a publish failed for want of an answer from the
// stream (no leader, a node down, a timeout), as opposed to an answer that
// refused it.
func unanswered(err error) bool {
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) && jsErr.APIError() != nil && jsErr.APIError().Code == 503 {
		return true // e.g. JetStream cluster not available, no leader
	}
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// Attempt reads the attempt count of a job message (1 when absent or bad).
func Attempt(h nats.Header) int {
	n, err := strconv.Atoi(h.Get(HeaderAttempt))
	if err != nil || n < 1 {
		return 1
	}
	return n
}
