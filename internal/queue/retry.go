package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"

	"github.com/stevedore-dev/stevedore/report"
)

// RetryPolicy is the backoff of scheduled retries of partial results: the
// delay doubles from Base per attempt up to Max, with up to a quarter of
// jitter either way.
type RetryPolicy struct {
	Base time.Duration
	Max  time.Duration
}

// DefaultRetryPolicy retries after 5 minutes, then 10, 20, ... up to a day.
func DefaultRetryPolicy() RetryPolicy { return RetryPolicy{Base: 5 * time.Minute, Max: 24 * time.Hour} }

// Delay is the wait before retry number attempt+1, after attempt runs.
func (p RetryPolicy) Delay(attempt int) time.Duration {
	if p.Base <= 0 {
		p = DefaultRetryPolicy()
	}
	if p.Max < p.Base {
		p.Max = p.Base
	}
	d := p.Base
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return d + jitter
}

// Schedule publishes a delayed run of job at the given time: a message on the
// digest's retry subject that the server delivers to its job subject then
// (JetStream message schedules). The attempt number travels in a header; a
// newer schedule for the digest replaces an older one. It returns once the
// server has stored the schedule.
func (p *Publisher) Schedule(ctx context.Context, j *Job, attempt int, at time.Time) error {
	d := j.Manifest.Hash
	subj := RetrySubject(d)
	ctx, span := p.startSpan(ctx, "schedule "+RetrySubjects, subj, d,
		attribute.Int("stevedore.attempt", attempt),
		attribute.String("stevedore.retry_at", at.UTC().Format(time.RFC3339Nano)))
	defer span.End()
	msg, err := p.jobMsg(ctx, subj, j, attempt)
	if err != nil {
		return fmt.Errorf("schedule retry of %s: %w", d, err)
	}
	// By hand rather than WithScheduleAt, which truncates to seconds.
	msg.Header.Set(jetstream.ScheduleHeader, "@at "+at.UTC().Format(time.RFC3339Nano))
	if _, err := p.publish(ctx, msg, jetstream.WithScheduleTarget(JobSubject(d))); err != nil {
		span.RecordError(err)
		return fmt.Errorf("schedule retry of %s at %s: %w", d, at.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// CancelRetry removes a pending scheduled retry of manifest d, if any.
func (p *Publisher) CancelRetry(ctx context.Context, d report.Digest) error {
	s, err := p.js.Stream(ctx, DefaultStream)
	if err != nil {
		return fmt.Errorf("cancel retry of %s: %w", d, err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(RetrySubject(d))); err != nil {
		return fmt.Errorf("cancel retry of %s: %w", d, err)
	}
	return nil
}
