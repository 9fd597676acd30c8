// Package reportwait lets requests wait until a manifest's report is
// terminal, without polling Postgres.
//
// Workers write a terminal report and, in the same transaction, send its
// digest on the Postgres channel postgres.ReportChannel (pg_notify), so a
// notification is delivered exactly when the report is committed, whichever
// process wrote it. A Hub holds one listening connection per process while
// anyone waits, and wakes the waiters of the digest named. Waiters of one
// digest share one watch: one read of the report per wake-up, however many
// requests wait for it. A slow safety re-check (every Recheck) and a re-check
// after the listening connection is re-established cover what a lost
// connection could have missed.
//
// The same connection listens on postgres.AnswerChannel for an
// AnswerListener (Options.Answers): the API's cache of stored answers, kept
// while the connection listens (see Hub.Keep).
package reportwait

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/tick"
	"github.com/stevedore-dev/stevedore/report"
)

// CheckFunc reads the report of d and says whether the wait is over.
type CheckFunc func(ctx context.Context, d report.Digest) (r *report.Report, done bool, err error)

// Options configure a Hub. Zero values take the defaults noted.
type Options struct {
	// Recheck is how often every watched report is read again whatever
	// the notifications say (default 15s).
	Recheck time.Duration
	// ReadyWait bounds how long a new watch waits for the listening
	// connection before its first read (default 5s): a watch never waits
	// for a database that is down, it re-checks instead.
	ReadyWait time.Duration
	// Linger is how long the listening connection is kept once nobody
	// waits (default 30s), so that requests one after the other do not
	// each open one.
	Linger time.Duration
	// Heartbeat is how long the listening connection may stay quiet
	// before it is asked to answer (a ping, bounded by Heartbeat too);
	// one that does not answer is dropped and the answer listener told it
	// stopped listening (default 5s). It bounds how long a connection that
	// died without a word is believed to listen.
	Heartbeat time.Duration
	Logger    *slog.Logger
	// Answers, when set, is told of the digests sent on
	// postgres.AnswerChannel, and of each time the connection starts or
	// stops listening.
	Answers AnswerListener
}

// AnswerListener hears what a Hub's connection hears on
// postgres.AnswerChannel. Its methods are called from the listening
// goroutine, one at a time, and must not block.
type AnswerListener interface {
	// AnswerChanged is called with the digest of a manifest whose answer
	// changed, committed ("" for all of them).
	AnswerChanged(d report.Digest)
	// Listening is called with true once the connection listens (every
	// change committed from then on is heard), with false once it stopped
	// or was lost (changes may go unheard).
	Listening(up bool)
}

// Hub fans notifications out to waiters. The zero value is not usable: call
// New.
type Hub struct {
	connect   func(ctx context.Context) (*pgx.Conn, error)
	check     CheckFunc
	recheck   time.Duration
	readyWait time.Duration
	linger    time.Duration
	heartbeat time.Duration
	log       *slog.Logger
	answers   AnswerListener

	// running is set while a listener runs (h.stop != nil); kept is when
	// Keep was last called, in Unix nanoseconds.
	running atomic.Bool
	kept    atomic.Int64

	mu      sync.Mutex
	watches map[report.Digest]*watch
	// stop ends the running listener; nil when none runs.
	stop  context.CancelFunc
	ready chan struct{}
	// idle stops the listener after Linger without waiters.
	idle *time.Timer
}

type watch struct {
	n      int
	wake   chan struct{} // capacity 1: a wake-up during a read is kept
	done   chan struct{}
	r      *report.Report
	cancel context.CancelFunc
}

// New returns a Hub listening with connections configured as pool's, and
// deciding with check when a wait is over.
func New(pool *pgxpool.Pool, check CheckFunc, o Options) *Hub {
	cfg := pool.Config().ConnConfig
	return newHub(func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) }, check, o)
}

func newHub(connect func(context.Context) (*pgx.Conn, error), check CheckFunc, o Options) *Hub {
	if o.Recheck <= 0 {
		o.Recheck = 15 * time.Second
	}
	if o.ReadyWait <= 0 {
		o.ReadyWait = 5 * time.Second
	}
	if o.Linger <= 0 {
		o.Linger = 30 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Hub{connect: connect, check: check, recheck: o.Recheck, readyWait: o.ReadyWait, linger: o.Linger, heartbeat: o.Heartbeat, log: o.Logger,
		answers: o.Answers, watches: map[report.Digest]*watch{}}
}

// Wait returns the report of d once check says the wait is over, or ctx's
// error. A failing read is logged and tried again on the next wake-up; it
// does not end the wait.
func (h *Hub) Wait(ctx context.Context, d report.Digest) (*report.Report, error) {
	w := h.join(d)
	defer h.leave(d, w)
	select {
	case <-w.done:
		return w.r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the report of %s: %w", d, ctx.Err())
	}
}

// Waiting returns how many digests are watched now.
func (h *Hub) Waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watches)
}

// Keep starts the listening connection unless it runs, and keeps it for
// Linger from now even when nobody waits: the Options.Answers listener
// hears of it through Listening.
func (h *Hub) Keep() {
	h.kept.Store(time.Now().UnixNano())
	if h.running.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.startLocked()
	h.stopIdleLocked()
}

// startLocked starts the listener unless it runs.
func (h *Hub) startLocked() {
	if h.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.ready = cancel, make(chan struct{})
	h.running.Store(true)
	go h.listen(ctx, h.ready)
}

func (h *Hub) join(d report.Digest) *watch {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.idle != nil {
		h.idle.Stop()
		h.idle = nil
	}
	h.startLocked()
	w := h.watches[d]
	if w == nil {
		ctx, cancel := context.WithCancel(context.Background())
		w = &watch{wake: make(chan struct{}, 1), done: make(chan struct{}), cancel: cancel}
		h.watches[d] = w
		go h.run(ctx, d, w, h.ready)
	}
	w.n++
	return w
}

func (h *Hub) leave(d report.Digest, w *watch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.n--
	if w.n == 0 {
		w.cancel()
		if h.watches[d] == w {
			delete(h.watches, d)
		}
	}
	h.stopIdleLocked()
}

// stopIdleLocked ends the listener once nobody has waited, nor called Keep,
// for Linger.
func (h *Hub) stopIdleLocked() {
	if len(h.watches) != 0 || h.stop == nil {
		return
	}
	if h.idle != nil {
		h.idle.Stop()
	}
	h.idle = time.AfterFunc(h.linger, h.idleEnd)
}

// idleEnd stops the listener, unless someone waits or Keep was called less
// than Linger ago (then it looks again when that is Linger ago).
func (h *Hub) idleEnd() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.watches) != 0 || h.stop == nil {
		return
	}
	if left := h.linger - time.Since(time.Unix(0, h.kept.Load())); left > 0 {
		h.idle = time.AfterFunc(left, h.idleEnd)
		return
	}
	h.running.Store(false)
	h.stop()
	h.stop = nil
}

// run reads the report of d at first and after each wake-up until check says
// the wait is over, then hands the report to every waiter.
func (h *Hub) run(ctx context.Context, d report.Digest, w *watch, ready <-chan struct{}) {
	t := time.NewTimer(h.readyWait)
	select {
	case <-ready:
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return
	}
	t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r, done, err := h.check(cctx, d)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			h.log.WarnContext(ctx, "read a waited-for report", "digest", d, "error", err)
		case done:
			h.mu.Lock()
			w.r = r
			close(w.done)
			if h.watches[d] == w {
				delete(h.watches, d)
			}
			h.stopIdleLocked()
			h.mu.Unlock()
			return
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			return
		}
	}
}

func (h *Hub) wake(d report.Digest) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.watches[d]; w != nil {
		poke(w)
	}
}

func (h *Hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.watches {
		poke(w)
	}
}

func poke(w *watch) {
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// listen holds a connection listening on postgres.ReportChannel until ctx ends,
// reconnecting with backoff, and wakes every watch each Recheck. ready is
// closed once the first attempt to listen has ended, well or not.
func (h *Hub) listen(ctx context.Context, ready chan struct{}) {
	var once sync.Once
	markReady := func() { once.Do(func() { close(ready) }) }
	defer markReady()
	go tick.Every(ctx, h.recheck, h.wakeAll)
	backoff := 100 * time.Millisecond
	for first := true; ctx.Err() == nil; first = false {
		conn, err := h.connectListening(ctx)
		if err != nil {
			markReady()
			if ctx.Err() == nil {
				h.log.WarnContext(ctx, "listen for finished reports", "channel", postgres.ReportChannel, "error", err, "retry_in", backoff)
			}
			tick.Sleep(ctx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		markReady()
		if !first {
			h.wakeAll() // what was sent while nobody listened
		}
		h.receive(ctx, conn)
		closeConn(conn)
	}
}

// connectTimeout bounds a connection's start and its LISTEN, so that a
// server that accepts and then says nothing does not hold the listener.
const connectTimeout = 10 * time.Second

// connectListening opens a connection and makes it listen.
func (h *Hub) connectListening(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := h.connect(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, h.listenSQL()); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

func (h *Hub) listenSQL() string {
	q := "LISTEN " + pgx.Identifier{postgres.ReportChannel}.Sanitize()
	if h.answers != nil {
		q += "; LISTEN " + pgx.Identifier{postgres.AnswerChannel}.Sanitize()
	}
	return q
}

// receive hands the notifications conn receives on until it fails or ctx
// ends; the answer listener is told the connection listens meanwhile.
func (h *Hub) receive(ctx context.Context, conn *pgx.Conn) {
	if h.answers != nil {
		h.answers.Listening(true)
		defer h.answers.Listening(false)
	}
	for {
		n, err := h.next(ctx, conn)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				h.log.WarnContext(ctx, "listening connection lost; reconnecting", "error", err)
			}
			return
		}
		if n.Channel == postgres.AnswerChannel {
			if h.answers != nil {
				h.answers.AnswerChanged(report.Digest(n.Payload))
			}
			continue
		}
		h.wake(report.Digest(n.Payload))
	}
}

// next returns the next notification conn receives. After a heartbeat
// without one it pings conn (a timed-out wait leaves a pgx connection
// usable) and waits again; a ping that fails or does not answer within a
// heartbeat is an error: the connection is taken for lost.
func (h *Hub) next(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, h.heartbeat)
		n, err := conn.WaitForNotification(wctx)
		quiet := err != nil && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded)
		cancel()
		if !quiet {
			return n, err
		}
		pctx, cancel := context.WithTimeout(ctx, h.heartbeat)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("listening connection quiet for %s did not answer a ping: %w", h.heartbeat, err)
		}
	}
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.Close(ctx)
}
