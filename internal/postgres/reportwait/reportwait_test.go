package reportwait

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// world is a database with a table of states standing for reports: a waiter
// is done when its digest's state is terminal.
type world struct {
	t      testing.TB
	url    string
	checks atomic.Int64
	hub    *Hub
	app    string
}

func newWorld(t testing.TB, recheck time.Duration) *world {
	t.Helper()
	w := &world{t: t, url: pgtest.URL(t)}
	ctx := context.Background()
	pool, err := postgres.Connect(ctx, w.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE waited (digest text PRIMARY KEY, state text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	check := func(ctx context.Context, d report.Digest) (*report.Report, bool, error) {
		w.checks.Add(1)
		var st string
		err := pool.QueryRow(ctx, `SELECT state FROM waited WHERE digest = $1`, string(d)).Scan(&st)
		if err == pgx.ErrNoRows {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		return report.NewReport(d, report.State(st)), report.State(st).Terminal(), nil
	}
	// The hub's connections carry a name of their own, for the test that
	// cuts the listener off.
	w.app = fmt.Sprintf("reportwait-test-%d", time.Now().UnixNano())
	w.hub = newHub(func(ctx context.Context) (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig(w.url)
		if err != nil {
			return nil, err
		}
		cfg.RuntimeParams["application_name"] = w.app
		return pgx.ConnectConfig(ctx, cfg)
	}, check, Options{Recheck: recheck})
	return w
}

// set writes d's state and, when terminal, notifies in the same
// transaction, as the store does.
func (w *world) set(d report.Digest, st report.State, notify bool) {
	w.t.Helper()
	conn, err := pgx.Connect(context.Background(), w.url)
	if err != nil {
		w.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `INSERT INTO waited VALUES ($1, $2) ON CONFLICT (digest) DO UPDATE SET state = excluded.state`, string(d), string(st)); err != nil {
			return err
		}
		if notify {
			_, err := tx.Exec(context.Background(), `SELECT pg_notify($1, $2)`, postgres.ReportChannel, string(d))
			return err
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

func digest(i int) report.Digest { return report.Digest(fmt.Sprintf("sha256:%064x", i)) }

// waitUntil polls cond (test bookkeeping, not the code under test).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Many waiters of one digest share one watch: one read at first, one per
// notification, and every waiter gets the report. No re-check timer fires
// (it is an hour), so only the notification can have woken them.
func TestManyWaitersOneReadPerNotification(t *testing.T) {
	w := newWorld(t, time.Hour)
	d := digest(1)
	w.set(d, report.StateScanLayers, false)
	const n = 50
	var wg sync.WaitGroup
	got := make([]*report.Report, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got[i], errs[i] = w.hub.Wait(ctx, d)
		})
	}
	waitUntil(t, "the first read", func() bool { return w.checks.Load() >= 1 })
	// A non-terminal notification: one more read, nobody leaves.
	w.set(d, report.StateCoalesce, true)
	waitUntil(t, "the read after the first notification", func() bool { return w.checks.Load() >= 2 })
	w.set(d, report.StateIndexFinished, true)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] == nil || got[i].State != report.StateIndexFinished {
			t.Fatalf("waiter %d: %v %v", i, got[i], errs[i])
		}
	}
	if c := w.checks.Load(); c != 3 {
		t.Errorf("%d reads for %d waiters and 2 notifications, want 3", c, n)
	}
	waitUntil(t, "the hub to go idle", func() bool { return w.hub.Waiting() == 0 })
}

// A notification sent while the listening connection is down is not lost:
// the report is read again once the listener is back.
func TestNotificationLostWhileReconnecting(t *testing.T) {
	w := newWorld(t, time.Hour)
	d := digest(2)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := w.hub.Wait(ctx, d)
		if err == nil && r.State != report.StateIndexError {
			err = fmt.Errorf("state %s", r.State)
		}
		done <- err
	}()
	waitUntil(t, "the first read", func() bool { return w.checks.Load() >= 1 })
	conn, err := pgx.Connect(context.Background(), w.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Cut the listener off, and write the report before it is back: a
	// notification nobody hears.
	var killed int
	err = conn.QueryRow(context.Background(), `
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, w.app).Scan(&killed)
	if err != nil || killed == 0 {
		t.Fatalf("terminate the listener: %d, %v", killed, err)
	}
	w.set(d, report.StateIndexError, true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A waiter whose context ends leaves; the others keep waiting.
func TestWaiterContextEnds(t *testing.T) {
	w := newWorld(t, time.Hour)
	d := digest(3)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := w.hub.Wait(ctx, d); errc <- err }()
	other := make(chan *report.Report, 1)
	go func() {
		r, _ := w.hub.Wait(context.Background(), d)
		other <- r
	}()
	waitUntil(t, "the first read", func() bool { return w.checks.Load() >= 1 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a canceled wait returned no error")
	}
	w.set(d, report.StateIndexPartial, true)
	if r := <-other; r == nil || r.State != report.StateIndexPartial {
		t.Fatalf("the remaining waiter got %v", r)
	}
}

// The slow re-check finds a report written without a notification.
func TestRecheckWithoutNotification(t *testing.T) {
	w := newWorld(t, 200*time.Millisecond)
	d := digest(4)
	done := make(chan *report.Report, 1)
	go func() {
		r, _ := w.hub.Wait(context.Background(), d)
		done <- r
	}()
	waitUntil(t, "the first read", func() bool { return w.checks.Load() >= 1 })
	w.set(d, report.StateIndexFinished, false)
	if r := <-done; r == nil || r.State != report.StateIndexFinished {
		t.Fatalf("got %v", r)
	}
}

// BenchmarkWake measures, per report, the time from the committed write
// (with its notification) to every waiter holding the report, and the
// reads of the report it cost, for 1 and 50 waiters.
//
//	go test -run '^$' -bench Wake ./internal/postgres/reportwait/
func BenchmarkWake(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("waiters=%d", n), func(b *testing.B) {
			w := newWorld(b, time.Hour)
			conn, err := pgx.Connect(context.Background(), w.url)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(context.Background())
			var reads int64
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				d := digest(1000 + i)
				before := w.checks.Load()
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() { w.hub.Wait(context.Background(), d) })
				}
				for w.checks.Load() == before {
					time.Sleep(time.Millisecond)
				}
				b.StartTimer()
				err := pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
					if _, err := tx.Exec(context.Background(), `INSERT INTO waited VALUES ($1, 'IndexFinished')`, string(d)); err != nil {
						return err
					}
					_, err := tx.Exec(context.Background(), `SELECT pg_notify($1, $2)`, postgres.ReportChannel, string(d))
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				wg.Wait()
				reads += w.checks.Load() - before
			}
			b.ReportMetric(float64(reads)/float64(b.N), "reads/report")
		})
	}
}

// answerEvents records what an AnswerListener hears: every start and stop,
// and the digests that begin with prefix. The channel is the whole
// database's: other tests' writes, in schemas of their own, are heard too
// and ignored (a listener must not block on them).
type answerEvents struct {
	prefix    string
	listening chan bool
	changed   chan report.Digest
}

func (a *answerEvents) AnswerChanged(d report.Digest) {
	if strings.HasPrefix(string(d), a.prefix) {
		a.changed <- d
	}
}
func (a *answerEvents) Listening(up bool) { a.listening <- up }

// Keep starts the listener without a waiter; the answer listener hears it
// start listening, the digests sent on postgres.AnswerChannel (not those on
// ReportChannel), and the listener stop once Keep is not called for Linger.
func TestKeepHearsAnswers(t *testing.T) {
	w := newWorld(t, time.Hour)
	ev := &answerEvents{prefix: w.app, listening: make(chan bool, 4), changed: make(chan report.Digest, 4)}
	w.hub.answers, w.hub.linger = ev, 2*time.Second
	next := func(what string, c <-chan bool) bool {
		t.Helper()
		select {
		case v := <-c:
			return v
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: not within 30 s", what)
			return false
		}
	}
	w.hub.Keep()
	if !next("listening", ev.listening) {
		t.Fatal("told not listening, want listening")
	}
	conn, err := pgx.Connect(context.Background(), w.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, ch := range []string{postgres.ReportChannel, postgres.AnswerChannel} {
		if _, err := conn.Exec(context.Background(), `SELECT pg_notify($1, $2)`, ch, w.app+ch); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case d := <-ev.changed:
		if d != report.Digest(w.app+postgres.AnswerChannel) {
			t.Fatalf("heard %q", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the answer's digest not heard within 30 s")
	}
	if next("stopped after Linger", ev.listening) {
		t.Fatal("told listening again, want stopped")
	}
	if w.hub.running.Load() {
		t.Fatal("the listener still runs")
	}
}

// blackHole is a TCP proxy to a Postgres server whose connections can be
// made to drop every byte without closing (freeze): a connection that died
// without a word, as behind a failed NAT or a cut network.
type blackHole struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen []*atomic.Bool
}

func newBlackHole(t *testing.T, target string) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			frozen := new(atomic.Bool)
			b.mu.Lock()
			b.frozen = append(b.frozen, frozen)
			b.mu.Unlock()
			t.Cleanup(func() { c.Close(); s.Close() })
			go pipe(c, s, frozen)
			go pipe(s, c, frozen)
		}
	}()
	return b
}

// pipe copies from src to dst, dropping what it reads once frozen.
func pipe(dst, src net.Conn, frozen *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if frozen.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// freeze makes every connection open now drop its bytes; later ones pass.
func (b *blackHole) freeze() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.frozen {
		f.Store(true)
	}
}

// A listening connection that goes silent (no error, no close) is found out
// by its heartbeat's unanswered ping: the answer listener is told it stopped
// listening, and the Hub listens again on a new connection.
func TestSilentConnectionIsDropped(t *testing.T) {
	w := newWorld(t, time.Hour)
	cfg, err := pgx.ParseConfig(w.url)
	if err != nil {
		t.Fatal(err)
	}
	hole := newBlackHole(t, net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	addr := hole.ln.Addr().(*net.TCPAddr)
	ev := &answerEvents{prefix: w.app, listening: make(chan bool, 8), changed: make(chan report.Digest, 8)}
	h := newHub(func(ctx context.Context) (*pgx.Conn, error) {
		c := cfg.Copy()
		c.Host, c.Port = "127.0.0.1", uint16(addr.Port)
		return pgx.ConnectConfig(ctx, c)
	}, nil, Options{Recheck: time.Hour, Heartbeat: 300 * time.Millisecond, Linger: time.Hour, Answers: ev})
	next := func(what string, want bool) {
		t.Helper()
		select {
		case v := <-ev.listening:
			if v != want {
				t.Fatalf("%s: told listening %v, want %v", what, v, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: not within 30 s", what)
		}
	}
	h.Keep()
	next("listening", true)
	hole.freeze()
	next("the silent connection dropped", false)
	next("listening again on a new connection", true)
	conn, err := pgx.Connect(context.Background(), w.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `SELECT pg_notify($1, $2)`, postgres.AnswerChannel, w.app+"after"); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-ev.changed:
		if d != report.Digest(w.app+"after") {
			t.Fatalf("heard %q", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a change after the reconnect not heard within 30 s")
	}
	// Stop the listener before the test's database goes: as if Keep had
	// last been called long ago.
	h.kept.Store(0)
	h.idleEnd()
	next("stopped", false)
}
