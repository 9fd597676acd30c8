package maintenance

import (
	"context"
	"log/slog"
	"time"

	"github.com/stevedore-dev/stevedore/internal/tick"
)

// Requeue requeues up to limit partial reports whose data has arrived or
// whose retry an operator asked for; *intake.Dispatcher's RequeueWaiting is
// one.
type Requeue func(ctx context.Context, limit int) (int, error)

// Reindex queues re-index jobs for up to limit reports made by an older
// scanner set or that an operator asked to re-index; *intake.Dispatcher's
// ReindexStale is one.
type Reindex func(ctx context.Context, limit int) (int, error)

// Sweep configures a sweep service: every Interval it does one round of at
// most Rate a second (Rate × Interval items, at least one).
type Sweep struct {
	Interval time.Duration
	Rate     int
	Logger   *slog.Logger
}

// NewRequeuer returns the service that requeues partial reports.
func NewRequeuer(requeue Requeue, s Sweep) *Loop {
	return s.loop("requeue partial reports", requeue)
}

// NewReindexer returns the service that queues re-index jobs.
func NewReindexer(reindex Reindex, s Sweep) *Loop {
	return s.loop("queue re-index jobs", reindex)
}

// loop is a service that calls round every interval with the round's limit.
func (s Sweep) loop(name string, round func(ctx context.Context, limit int) (int, error)) *Loop {
	limit := max(1, int(float64(s.Rate)*s.Interval.Seconds()))
	log := s.logger()
	return NewLoop(name, func(ctx context.Context) {
		tick.Every(ctx, s.Interval, func() {
			if _, err := round(ctx, limit); err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, name, "error", err)
			}
		})
	})
}

// logger returns the sweep's logger, or slog's default.
func (s Sweep) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}
