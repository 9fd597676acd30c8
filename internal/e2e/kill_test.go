package e2e_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

// TestMain lets the test binary run as a worker process for the kill test.
func TestMain(m *testing.M) {
	switch os.Getenv("STEVEDORE_E2E_CHILD") {
	case "worker":
		os.Exit(childWorker())
	case "crash-after-partial":
		os.Exit(crashAfterPartial())
	}
	os.Exit(m.Run())
}

func childWorker() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	// Unset: the defaults.
	ttl, _ := time.ParseDuration(os.Getenv("CHILD_LEASE_TTL"))
	ack, _ := time.ParseDuration(os.Getenv("CHILD_ACK_WAIT"))
	n, err := app.Start(ctx, app.Config{
		DatabaseURL: os.Getenv("DATABASE_URL"), NATSURL: os.Getenv("NATS_URL"),
		Workers: 1, LeaseTTL: ttl, AckWait: ack, Holder: "child",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	defer n.Close()
	n.Run(ctx)
	return 0
}

// gate holds blob downloads of one digest until opened.
type gate struct {
	digest string
	open   chan struct{}
}

func (g *gate) middleware(next http.Handler) http.Handler {
	match := devregistry.BlobGet(g.digest)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if match(r) {
			select {
			case <-g.open:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// A SIGKILLed worker's job is finished by another within the lease TTL plus
// a few seconds, at the default settings (lease TTL, ack wait, max deliver):
// the job is redelivered no later than the lease expires, and a delivery that
// finds the lease still held waits for just what is left of it.
func TestKilledWorkerIsReplacedAfterLeaseExpiry(t *testing.T) {
	files := map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("survivor")}
	layer, err := devregistry.LayerFromFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := layer.Digest()
	g := &gate{digest: ld.String(), open: make(chan struct{})}
	h := newHarness(t, devregistry.WithMiddleware(g.middleware))
	cfg := h.config(0, true)
	h.start(cfg) // dispatcher only
	m := h.push("kill:1", files)

	// A worker in another process takes the job and hangs on the layer.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STEVEDORE_E2E_CHILD=worker", "DATABASE_URL="+h.dbURL, "NATS_URL="+h.nats.ClientURL())
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if _, err := h.client.IndexManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child to lease the manifest and start fetching", 30*time.Second, func() bool {
		return h.count(`SELECT count(*) FROM lease WHERE digest = $1 AND holder = 'child'`, string(m.Hash)) == 1 &&
			h.reg.Counter().InFlight() > 0
	})
	var childFence int64
	h.pool.QueryRow(context.Background(), `SELECT fence FROM lease WHERE digest = $1`, string(m.Hash)).Scan(&childFence)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killedAt := time.Now()
	close(g.open)

	// A worker here, at the default settings, finishes it once the lease
	// ran out.
	h.start(app.Config{DatabaseURL: h.dbURL, NATSURL: h.nats.ClientURL(), Workers: 1, Logger: testLogger(t)})
	r := h.wait(m.Hash)
	took := time.Since(killedAt)
	if r.State != report.StateIndexFinished || len(r.Packages) != 1 {
		t.Fatalf("after the kill: state %s, %d packages, err %q", r.State, len(r.Packages), r.Err)
	}
	var fence int64
	h.pool.QueryRow(context.Background(), `SELECT fence FROM index_report WHERE manifest_hash = $1`, string(m.Hash)).Scan(&fence)
	if fence <= childFence {
		t.Fatalf("report written with fence %d, not newer than the killed worker's %d", fence, childFence)
	}
	if _, finished := h.runs(m.Hash); finished != 1 {
		t.Fatalf("%d final writes, want 1", finished)
	}
	t.Logf("finished %s after the kill (default lease ttl %s, ack wait %s; child fence %d, new fence %d)",
		took.Round(time.Millisecond), app.DefaultLeaseTTL, app.DefaultAckWait, childFence, fence)
	// A generous bound, not a speed measurement: the lease TTL plus a few
	// seconds, far below the old 60 s ack wait.
	if bound := app.DefaultLeaseTTL + 10*time.Second; took > bound {
		t.Fatalf("finished %s after the kill, want within the lease TTL plus a few seconds (%s)", took.Round(time.Millisecond), bound)
	}
}
