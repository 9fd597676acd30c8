package e2e_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/testing/closedport"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
)

// rhelFiles is a RHEL-like image: a real RHEL release file and a real
// content manifest (both from claircore's test data, Apache-2.0) and a real
// rpm database (openshift-preflight's test data, Apache-2.0: tzdata).
func rhelFiles(t *testing.T, release string) map[string][]byte {
	t.Helper()
	osr, err := os.ReadFile(fixtures.Path(t, "osrelease/claircore_rhel-releasefiles-"+release+"_os-release"))
	if err != nil {
		t.Fatal(err)
	}
	rpmdb, err := os.ReadFile(fixtures.Path(t, "rpm/preflight_sqlite_rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"etc/os-release":                                  osr,
		"var/lib/rpm/rpmdb.sqlite":                        rpmdb,
		"root/buildinfo/content_manifests/foo-1.1-2.json": fixtures.TarMember(t, "layers/claircore_layer-with-embedded-cs.tar", "root/buildinfo/content_manifests/foo-1.1-2.json"),
	}
}

// The content sets of claircore's content manifest, mapped as Red Hat's
// repository-to-cpe.json maps content sets.
const contentSetMapping = `{"data": {
  "content-set-1": {"cpes": ["cpe:/o:redhat:enterprise_linux:8::baseos"]},
  "content-set-2": {"cpes": ["cpe:/a:redhat:enterprise_linux:8::appstream"]}
}}`

// partialConfig is a node config with short partial-retry timings and the
// repository-to-CPE mapping fetched from url.
func (h *harness) partialConfig(workers int, dispatcher bool, url string) app.Config {
	cfg := h.config(workers, dispatcher)
	cfg.Retry.Base, cfg.Retry.Max = time.Second, 2*time.Second
	cfg.SweepInterval = 200 * time.Millisecond
	cfg.EnrichmentInterval = time.Second
	if url != "" {
		cfg.EnrichmentSources = []enrich.Source{{Name: enrich.RepositoryCPE, URL: url}}
	}
	return cfg
}

func (h *harness) waitFor(what string, d time.Duration, cond func() bool) {
	h.t.Helper()
	waitFor(h.t, what, d, cond)
}

func (h *harness) report(d report.Digest) *report.Report {
	h.t.Helper()
	r, err := h.client.Report(context.Background(), d)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// TestReindexStormIsGone reproduces the report that started the project: an
// enrichment source that cannot be reached. Every manifest ends IndexPartial
// with the reason, retries come on a schedule with backoff and fetch no layer
// again, and when the source comes back every manifest finishes with its
// CPEs, still without refetching a layer.
func TestReindexStormIsGone(t *testing.T) {
	h := newHarness(t)
	// A mapping source that refuses connections: a port nothing listens on.
	addr := closedport.Addr(t)
	n := h.start(h.partialConfig(2, true, "http://"+addr+"/repository-to-cpe.json"))

	var ms []*report.Manifest
	for _, rel := range []string{"7", "8", "9"} {
		ms = append(ms, h.push("rhel"+rel+":1", rhelFiles(t, rel)))
	}
	ctx := context.Background()
	for _, m := range ms {
		if _, err := h.client.IndexManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	checkPartialReports(t, h, ms)
	layerBytes := h.reg.Counter().BlobBytes()
	h.reg.Counter().Reset()

	// A client asking again gets the stored partial (served as finished on
	// Clair's path) and queues nothing.
	r, err := h.client.IndexManifest(ctx, ms[0])
	if err != nil || r.State != report.StateIndexFinished || !r.Success {
		t.Fatalf("request for a partial manifest: %v %v", r, err)
	}

	// Several retry cycles, on the schedule.
	h.waitFor("three attempts of every manifest", 60*time.Second, func() bool {
		for _, m := range ms {
			if h.report(m.Hash).Attempt < 3 {
				return false
			}
		}
		return true
	})
	if b := h.reg.Counter().BlobBytes(); b != 0 {
		t.Fatalf("retries fetched %d layer bytes, want 0", b)
	}

	// The source comes back: the updater loads it, the waiting reports are
	// requeued at once and finish with their CPEs.
	serveMappingAndWaitFinished(t, h, addr, ms)
	if b := h.reg.Counter().BlobBytes(); b != 0 {
		t.Fatalf("finishing fetched %d layer bytes, want 0", b)
	}

	// Deliveries: each manifest ran once per attempt (1 + its scheduled
	// retries), and the queue delivered nothing else.
	total := checkOneRunPerAttempt(t, h, n, ms)
	t.Logf("first scan read %d layer bytes; %d runs in all, 0 layer bytes after the first scan", layerBytes, total)
}

// checkPartialReports waits for the reports of ms: each partial, waiting
// for the repository-to-CPE mapping, keeping what was found.
func checkPartialReports(t *testing.T, h *harness, ms []*report.Manifest) {
	for _, m := range ms {
		r := h.wait(m.Hash)
		if r.State != report.StateIndexPartial || len(r.Partial) != 1 || r.Partial[0].Scanner != enrich.RepositoryCPE {
			t.Fatalf("%s: state %s, partial %+v, err %q", m.Hash, r.State, r.Partial, r.Err)
		}
		if len(r.Packages) != 1 || len(r.Distributions) != 1 || len(r.Repositories) != 2 || r.NextRetry == nil {
			t.Fatalf("%s: a partial report keeps what was found: %d packages, %d distributions, %d repositories, next retry %v",
				m.Hash, len(r.Packages), len(r.Distributions), len(r.Repositories), r.NextRetry)
		}
		t.Logf("%s partial: %s", m.Hash, r.Partial[0].Reason)
	}
}

// serveMappingAndWaitFinished serves the mapping on addr again, and waits
// for each report of ms to finish with its CPEs.
func serveMappingAndWaitFinished(t *testing.T, h *harness, addr string, ms []*report.Manifest) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, contentSetMapping)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for _, m := range ms {
		h.waitFor("IndexFinished after the mapping came back", 60*time.Second, func() bool {
			return h.report(m.Hash).State == report.StateIndexFinished
		})
		r := h.report(m.Hash)
		var cpes []string
		for _, repo := range r.Repositories {
			cpes = append(cpes, repo.CPE)
		}
		slices.Sort(cpes)
		if fmt.Sprint(cpes) != "[cpe:/a:redhat:enterprise_linux:8::appstream cpe:/o:redhat:enterprise_linux:8::baseos]" || len(r.Partial) != 0 {
			t.Fatalf("%s: repository CPEs %v, partial %v", m.Hash, cpes, r.Partial)
		}
	}
}

// checkOneRunPerAttempt checks that each manifest of ms ran once per
// attempt, and that the queue delivered nothing else; it returns the runs.
func checkOneRunPerAttempt(t *testing.T, h *harness, n *app.Node, ms []*report.Manifest) int {
	total := 0
	for _, m := range ms {
		r := h.report(m.Hash)
		runs, finished := h.runs(m.Hash)
		if runs != r.Attempt || finished != 1 {
			t.Errorf("%s: %d runs for %d attempts, %d final writes", m.Hash, runs, r.Attempt, finished)
		}
		total += runs
	}
	if d := deliveries(t, n.JS); int(d) != total {
		t.Errorf("%d job deliveries, %d runs", d, total)
	}
	return total
}

// retrySubjectCount counts messages (schedules) pending on d's retry subject.
func retrySubjectCount(t *testing.T, js jetstream.JetStream, d report.Digest) int {
	t.Helper()
	s, err := js.Stream(context.Background(), queue.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(queue.RetrySubject(d)))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[queue.RetrySubject(d)])
}

func TestScheduledRetriesSurviveANATSRestart(t *testing.T) {
	h := newHarness(t)
	cfg := h.partialConfig(1, true, "")
	cfg.Retry.Base, cfg.Retry.Max = 3*time.Second, 3*time.Second
	n := h.start(cfg)
	m := h.push("restart:1", rhelFiles(t, "8"))
	if r := h.indexWait(t, m); r.State != report.StateIndexPartial || r.Attempt != 1 {
		t.Fatalf("state %s attempt %d", r.State, r.Attempt)
	}
	if c := retrySubjectCount(t, n.JS, m.Hash); c != 1 {
		t.Fatalf("%d schedules pending, want 1", c)
	}
	h.nats.Restart(t)
	// The retry still fires, from the restarted server's store.
	h.waitFor("the scheduled retry after the restart", 60*time.Second, func() bool {
		r, err := h.client.Report(context.Background(), m.Hash)
		return err == nil && r.Attempt >= 2 && r.State == report.StateIndexPartial
	})
}

func TestCrashBetweenPartialAndAck(t *testing.T) {
	h := newHarness(t)
	cfg := h.partialConfig(0, true, "")
	cfg.Retry.Base, cfg.Retry.Max = time.Hour, time.Hour // only the crash may cause a run
	n := h.start(cfg)
	m := h.push("crash:1", rhelFiles(t, "9"))

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STEVEDORE_E2E_CHILD=crash-after-partial", "DATABASE_URL="+h.dbURL, "NATS_URL="+h.nats.ClientURL(),
		"CHILD_LEASE_TTL="+cfg.LeaseTTL.String(), "CHILD_ACK_WAIT="+cfg.AckWait.String())
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.IndexManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("child did not crash after storing a partial report within 60s (report: %+v)", h.report(m.Hash))
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("child did not crash after storing the partial report: %v", err)
	}
	if r := h.report(m.Hash); r.State != report.StateIndexPartial {
		t.Fatalf("after the crash: state %s", r.State)
	}
	if c := retrySubjectCount(t, n.JS, m.Hash); c != 0 {
		t.Fatalf("%d schedules before any worker got past the crash point", c)
	}
	// A worker here gets the redelivered job and finishes the steps.
	h.start(h.partialConfig(1, false, ""))
	h.waitFor("the retry to be scheduled by the surviving worker", 30*time.Second, func() bool {
		return retrySubjectCount(t, n.JS, m.Hash) == 1
	})
	cons, _ := n.JS.Consumer(context.Background(), queue.DefaultStream, queue.DefaultConsumer)
	h.waitFor("the job to be acked", 30*time.Second, func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	runs, _ := h.runs(m.Hash)
	if runs != 2 {
		t.Fatalf("%d runs, want the crashed one and one more", runs)
	}
	if n := h.count(`SELECT count(*) FROM index_report WHERE manifest_hash = $1`, string(m.Hash)); n != 1 {
		t.Fatalf("%d stored reports", n)
	}
	if c := retrySubjectCount(t, n.JS, m.Hash); c != 1 {
		t.Fatalf("%d schedules pending, want 1", c)
	}
}

// crashAfterPartial runs a worker that exits right after storing a partial
// report, before scheduling its retry and acking.
func crashAfterPartial() int {
	ttl, _ := time.ParseDuration(os.Getenv("CHILD_LEASE_TTL"))
	ack, _ := time.ParseDuration(os.Getenv("CHILD_ACK_WAIT"))
	ctx := context.Background()
	// The worker starts the span that schedules a partial report's retry
	// right after storing the report and before publishing the schedule and
	// acking: the process dies there, observed through its traces rather
	// than a hook in the worker.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(exitOnSpanStart{name: "schedule " + queue.RetrySubjects, code: 3}))
	n, err := app.Start(ctx, app.Config{
		DatabaseURL: os.Getenv("DATABASE_URL"), NATSURL: os.Getenv("NATS_URL"),
		Workers: 1, LeaseTTL: ttl, AckWait: ack, MaxDeliver: 4, Holder: "crasher",
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, nil)),
		TracerProvider: tp,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	n.Run(ctx)
	return 0
}

// exitOnSpanStart is a span processor that exits the process, with code,
// when a span named name starts (on the goroutine that starts it).
type exitOnSpanStart struct {
	name string
	code int
}

func (e exitOnSpanStart) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	if s.Name() == e.name {
		syscall.Exit(e.code)
	}
}
func (exitOnSpanStart) OnEnd(sdktrace.ReadOnlySpan)      {}
func (exitOnSpanStart) Shutdown(context.Context) error   { return nil }
func (exitOnSpanStart) ForceFlush(context.Context) error { return nil }
