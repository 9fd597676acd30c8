package indexer

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
)

// progress stores the intermediate states of one run. With no delay
// (Config.ProgressAfter zero) each state is stored as it is entered, in its
// own fenced transaction. With a delay, a run that ends sooner stores none of
// them (the report goes from what the request stored to the final one); once
// the run has lasted the delay, the state it is in is stored, and every later
// one as it is entered. Writes are serialised and end (stop) before the final
// report is written, so an intermediate state never replaces it.
type progress struct {
	ix      *Indexer
	ctx     context.Context
	f       postgres.Fence
	d       report.Digest
	attempt int

	mu    sync.Mutex
	state report.State // the state entered, "" before the first
	long  bool         // the delay has passed: store states as entered
	done  bool         // stopped: store nothing more
	err   error        // a failed background write, returned by the next call
	timer *time.Timer
}

func (ix *Indexer) newProgress(ctx context.Context, f postgres.Fence, d report.Digest, attempt int) *progress {
	return &progress{ix: ix, ctx: ctx, f: f, d: d, attempt: attempt, long: ix.cfg.ProgressAfter <= 0}
}

// enter records that the run entered state s, storing it now when the run
// is long (or now is true), and otherwise when the delay passes.
func (p *progress) enter(ctx context.Context, s report.State, now bool) error {
	trace.SpanFromContext(ctx).AddEvent("state", trace.WithAttributes(attribute.String("stevedore.state", string(s))))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.state = s
	if p.long || now {
		return p.ix.transition(ctx, p.f, p.d, s, p.attempt)
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(p.ix.cfg.ProgressAfter, p.flush)
	}
	return nil
}

// flush stores the current state once the delay has passed.
func (p *progress) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.long = true
	if err := p.ix.transition(p.ctx, p.f, p.d, p.state, p.attempt); err != nil {
		p.err = err
	}
}

// stop ends the stored progress: nothing is written after it returns. It
// returns the error of a failed background write.
func (p *progress) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	if p.timer != nil {
		p.timer.Stop()
	}
	return p.err
}
