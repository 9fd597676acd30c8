// Package maintenance runs a fleet's background work — the sweeps that
// requeue partial reports and re-index stale ones, the retries of webhook
// lookups, the enrichment updater — as services under one elected leader
// (after River's internal/maintenance).
//
// Every dispatcher process campaigns; one at a time is the leader, and only
// the leader runs the services. Leadership is a lease in Postgres
// (internal/postgres/leases: one row, a fence from one sequence, an expiry
// from the database's clock, renewed every third of its TTL), so a leader
// that dies or loses its database is replaced once its lease expires, and a
// leader that stops gives it up at once. The services hold no leader logic
// of their own.
package maintenance

import (
	"context"
	"errors"
	"sync"
)

// Service is background work that runs only on the leader.
type Service interface {
	// Name names the service in logs.
	Name() string
	// Start starts the work in the background; it runs until ctx ends or
	// Stop is called. A stopped service may be started again.
	Start(ctx context.Context) error
	// Stop ends the work and waits for it to return. It is safe to call on
	// a service that is not running.
	Stop()
}

// ErrStarted is returned by Start on a service that is already running.
var ErrStarted = errors.New("service already started")

// Loop is a Service that runs one function until its context ends.
type Loop struct {
	name string
	run  func(ctx context.Context)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewLoop returns a service named name that runs run (which must return
// when its context ends).
func NewLoop(name string, run func(ctx context.Context)) *Loop {
	return &Loop{name: name, run: run}
}

// Name implements Service.
func (l *Loop) Name() string { return l.name }

// Start implements Service.
func (l *Loop) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		return ErrStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	l.cancel, l.done = cancel, done
	go func() {
		defer close(done)
		l.run(ctx)
	}()
	return nil
}

// Stop implements Service.
func (l *Loop) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		return
	}
	l.cancel()
	<-l.done
	l.cancel, l.done = nil, nil
}
