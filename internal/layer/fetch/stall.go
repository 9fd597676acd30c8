package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ErrStalled is wrapped by the error of a download that made no progress
// for StallLimits.Idle, or read less than StallLimits.MinRate bytes a second
// over a StallLimits.Window. It is transient: the download is abandoned, its
// worker freed, and the job retried later with backoff.
var ErrStalled = errors.New("download stalled")

// StallLimits bound how slowly a layer may download. Zero fields take the
// defaults; a negative field disables its rule.
type StallLimits struct {
	// Idle is the longest wait for the next bytes of the body (default
	// 30s). The wait for the answer's headers is bounded per attempt by
	// the registry client (registry.Config.ResponseHeaderTimeout).
	Idle time.Duration
	// MinRate is the least bytes a second a download must average over
	// each Window (default 10 KiB/s over 60s). A registry dripping a byte
	// every few seconds passes the idle rule and fails this one.
	MinRate int64
	Window  time.Duration
}

// Defaults of StallLimits.
const (
	DefaultStallIdle   = 30 * time.Second
	DefaultMinRate     = 10 << 10
	DefaultStallWindow = time.Minute
)

func (s StallLimits) withDefaults() StallLimits {
	if s.Idle == 0 {
		s.Idle = DefaultStallIdle
	}
	if s.MinRate == 0 {
		s.MinRate = DefaultMinRate
	}
	if s.Window == 0 {
		s.Window = DefaultStallWindow
	}
	return s
}

// WithStallLimits sets how slowly a layer may download (default: see
// StallLimits).
func WithStallLimits(s StallLimits) Option { return func(f *Fetcher) { f.stall = s } }

// watchdog cancels a download that stalls, with an ErrStalled cause.
type watchdog struct {
	limits StallLimits
	cancel context.CancelCauseFunc
	where  string

	mu          sync.Mutex
	last        time.Time // last progress (start, or a byte read)
	windowStart time.Time
	windowBytes int64

	stop     chan struct{}
	stopOnce sync.Once
}

// watch returns ctx, cancelled with an ErrStalled cause when the download
// it carries stalls once start was called, and the watchdog. Call start
// when the answer's headers arrived (the wait for them is bounded per
// attempt by the registry client's ResponseHeaderTimeout, so that its
// retries and Retry-After waits are not taken for a stall), progress as
// bytes arrive and done when the download ends.
func watch(ctx context.Context, limits StallLimits, where string) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	return ctx, &watchdog{limits: limits, cancel: cancel, where: where, stop: make(chan struct{})}
}

// start starts watching the body.
func (w *watchdog) start() {
	now := time.Now()
	w.mu.Lock()
	w.last, w.windowStart = now, now
	w.mu.Unlock()
	tick := time.Second
	for _, d := range []time.Duration{w.limits.Idle, w.limits.Window} {
		if d > 0 && d/4 < tick {
			tick = d / 4
		}
	}
	tick = max(tick, 5*time.Millisecond)
	if w.limits.Idle > 0 || (w.limits.MinRate > 0 && w.limits.Window > 0) {
		go w.run(tick)
	}
}

func (w *watchdog) run(tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			if err := w.check(now); err != nil {
				w.cancel(err)
				return
			}
		}
	}
}

func (w *watchdog) check(now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.limits.Idle > 0 && now.Sub(w.last) >= w.limits.Idle {
		return fmt.Errorf("%s: no data for %s: %w", w.where, w.limits.Idle, ErrStalled)
	}
	if w.limits.MinRate > 0 && w.limits.Window > 0 && now.Sub(w.windowStart) >= w.limits.Window {
		span := now.Sub(w.windowStart)
		if float64(w.windowBytes) < float64(w.limits.MinRate)*span.Seconds() {
			return fmt.Errorf("%s: %d bytes in %s, under the minimum of %d bytes/s: %w", w.where, w.windowBytes, span.Round(time.Millisecond), w.limits.MinRate, ErrStalled)
		}
		w.windowStart, w.windowBytes = now, 0
	}
	return nil
}

func (w *watchdog) progress(n int) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	w.last = time.Now()
	w.windowBytes += int64(n)
	w.mu.Unlock()
}

// halt stops the watchdog.
func (w *watchdog) halt() { w.stopOnce.Do(func() { close(w.stop) }) }

// done stops the watchdog and releases its context.
func (w *watchdog) done() {
	w.halt()
	w.cancel(nil)
}

// stalled returns the stall error when ctx was cancelled by the watchdog.
func stalled(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, ErrStalled) {
		return cause
	}
	return nil
}

// watchedBody is a download's body under its watchdog: a read failing
// because the download stalled says so.
type watchedBody struct {
	io.ReadCloser
	ctx context.Context
	w   *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.w.progress(n)
	if err != nil {
		if serr := stalled(b.ctx); serr != nil {
			err = serr
		}
		if err == io.EOF {
			b.w.halt()
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.done()
	return err
}
