package maintenance

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/tick"
)

// LeaderKey names the lease the leader holds.
const LeaderKey = "maintenance:leader"

// ElectorConfig configures an Elector.
type ElectorConfig struct {
	// Leases takes the leadership lease in this process's name; its TTL
	// is how long a dead leader keeps the leadership.
	Leases *leases.Manager
	// Services run while this process is the leader, started in order and
	// stopped in reverse.
	Services []Service
	// Interval is how often a process that is not the leader asks to
	// become it.
	Interval time.Duration
	Logger   *slog.Logger
}

// Elector campaigns for the leadership and runs the services while it holds
// it.
type Elector struct {
	cfg    ElectorConfig
	leader atomic.Bool
}

// NewElector returns an Elector; Run campaigns.
func NewElector(cfg ElectorConfig) (*Elector, error) {
	if cfg.Leases == nil || cfg.Interval <= 0 {
		return nil, errors.New("maintenance: an elector needs leases and an interval above zero")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Elector{cfg: cfg}, nil
}

// Leader reports whether this process is the leader now.
func (e *Elector) Leader() bool { return e.leader.Load() }

// Run campaigns until ctx ends: it takes the leadership when it is free (or
// its holder's lease expired), runs the services until the leadership is
// lost or ctx ends, then gives the leadership up and, unless ctx ended,
// campaigns again.
func (e *Elector) Run(ctx context.Context) error {
	for {
		l, err := e.cfg.Leases.Acquire(ctx, LeaderKey)
		var busy *leases.BusyError
		switch {
		case err == nil:
			e.lead(ctx, l)
		case ctx.Err() != nil:
			return nil
		case !errors.As(err, &busy):
			e.cfg.Logger.WarnContext(ctx, "campaign for the leadership of the background work", "error", err)
		}
		if !tick.Sleep(ctx, e.cfg.Interval) {
			return nil
		}
	}
}

// lead runs the services under l until it is lost or released.
func (e *Elector) lead(ctx context.Context, l *leases.Lease) {
	log := e.cfg.Logger
	log.InfoContext(ctx, "leader of the background work", "fence", l.Fence, "services", len(e.cfg.Services))
	e.leader.Store(true)
	var started []Service
	for _, s := range e.cfg.Services {
		if err := s.Start(l.Context()); err != nil {
			log.ErrorContext(ctx, "start a background service", "service", s.Name(), "error", err)
			continue
		}
		started = append(started, s)
	}
	<-l.Context().Done()
	for i := len(started) - 1; i >= 0; i-- {
		started[i].Stop()
	}
	e.leader.Store(false)
	if l.Lost() {
		log.WarnContext(ctx, "lost the leadership of the background work", "cause", context.Cause(l.Context()))
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := l.Release(rctx); err != nil && ctx.Err() == nil {
		log.WarnContext(ctx, "give up the leadership of the background work", "error", err)
	}
}
