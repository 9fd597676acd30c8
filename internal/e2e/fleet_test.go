package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

// baseFiles is a base layer's content: a distribution, a package database
// and a few MB of incompressible data, so that its download takes a while.
func baseFiles(seed uint64) map[string][]byte {
	junk := make([]byte, 3<<20)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i < len(junk); i += 8 {
		v := r.Uint64()
		for k := 0; k < 8 && i+k < len(junk); k++ {
			junk[i+k] = byte(v >> (8 * k))
		}
	}
	return map[string][]byte{
		"etc/os-release":      osRelease("debian", "12"),
		"var/lib/dpkg/status": dpkgStatus("base-files", "libc6"),
		"usr/lib/blob.bin":    junk,
	}
}

func topFiles(i int) map[string][]byte {
	return map[string][]byte{fmt.Sprintf("app/%d/config", i): []byte(fmt.Sprintf("image %d\n", i))}
}

// holdBlob holds the GETs of one blob until opened.
type holdBlob struct {
	mu     sync.Mutex
	digest string
	open   chan struct{}
}

func newHold() *holdBlob { return &holdBlob{open: make(chan struct{})} }

func (g *holdBlob) set(d string) { g.mu.Lock(); g.digest = d; g.mu.Unlock() }

func (g *holdBlob) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		d := g.digest
		g.mu.Unlock()
		if d != "" && devregistry.BlobGet(d)(r) {
			select {
			case <-g.open:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// metricSums totals the int64 sums and gauges of r by metric name, over
// their attributes (see metricPoints).
func metricSums(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for key, v := range metricPoints(t, r) {
		name, _, _ := strings.Cut(key, " ")
		out[name] += v
	}
	return out
}

func (h *harness) postManifest(m *report.Manifest) int {
	h.t.Helper()
	body, _ := json.Marshal(m)
	req, _ := http.NewRequest("POST", h.api.URL+"/indexer/api/v1/index_report", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	// Queue and return: these tests submit many manifests at once.
	req.Header.Set("Prefer", "respond-async")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSharedBaseIsFetchedOnce: 20 images share a base layer; two worker
// instances (four jobs at once) index them all at the same moment, the
// base's download held until several jobs wait for it. The base is fetched
// once, each top layer once.
func TestSharedBaseIsFetchedOnce(t *testing.T) {
	hold := newHold()
	h := newHarness(t, devregistry.WithMiddleware(hold.middleware))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	cfg := h.config(0, true)
	h.start(cfg)
	for range 2 {
		wc := h.config(2, false)
		wc.MeterProvider = mp
		h.start(wc)
	}
	base := baseFiles(1)
	var ms []*report.Manifest
	for i := range 20 {
		ms = append(ms, h.push(fmt.Sprintf("shared/app%d:1", i), base, topFiles(i)))
	}
	baseDigest := string(ms[0].Layers[0].Hash)
	hold.set(baseDigest)
	h.reg.Counter().Reset()
	for _, m := range ms {
		if code := h.postManifest(m); code != http.StatusAccepted {
			t.Fatalf("POST: HTTP %d", code)
		}
	}
	waitFor(t, "jobs of both workers to wait for the base layer", 30*time.Second, func() bool {
		return h.count(`SELECT count(*) FROM lease WHERE digest LIKE 'layer:%'`) >= 1 &&
			h.count(`SELECT count(*) FROM lease WHERE digest NOT LIKE 'layer:%'`) >= 3 && h.reg.Counter().InFlight() > 0
	})
	close(hold.open)
	for _, m := range ms {
		if r := h.wait(m.Hash); r.State != report.StateIndexFinished || len(r.Packages) != 2 {
			t.Fatalf("%s: state %s, %d packages, %q", m.Hash, r.State, len(r.Packages), r.Err)
		}
	}
	if n := h.reg.Counter().BlobFetches(baseDigest); n != 1 {
		t.Fatalf("the shared base was fetched %d times, want 1", n)
	}
	for i, m := range ms {
		if n := h.reg.Counter().BlobFetches(string(m.Layers[1].Hash)); n != 1 {
			t.Errorf("top layer of image %d fetched %d times, want 1", i, n)
		}
	}
	var want int64
	for _, m := range ms {
		want += m.Layers[1].Size
	}
	want += ms[0].Layers[0].Size
	if got := h.reg.Counter().BlobBytes(); got != want {
		t.Errorf("%d blob bytes served, want %d (each layer once)", got, want)
	}
	if s := metricSums(t, reader)["stevedore.indexer.layers_skipped"]; s != 19 {
		t.Errorf("layers skipped because already scanned: %d, want 19 (the base, for all images but one)", s)
	}
	if n := h.count(`SELECT count(*) FROM lease WHERE digest LIKE 'layer:%'`); n != 0 {
		t.Errorf("%d layer claims left", n)
	}
}

// TestSecondWorkerProcessDoesNotRefetch: two images sharing a base, one job
// in this process, one in a worker process of its own, both waiting for
// the base at once: it is fetched once.
func TestSecondWorkerProcessDoesNotRefetch(t *testing.T) {
	hold := newHold()
	h := newHarness(t, devregistry.WithMiddleware(hold.middleware))
	cfg := h.config(1, true)
	h.start(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STEVEDORE_E2E_CHILD=worker", "DATABASE_URL="+h.dbURL, "NATS_URL="+h.nats.ClientURL(),
		"CHILD_LEASE_TTL="+cfg.LeaseTTL.String(), "CHILD_ACK_WAIT="+cfg.AckWait.String())
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	base := baseFiles(2)
	m1 := h.push("proc/a:1", base, topFiles(1))
	m2 := h.push("proc/b:1", base, topFiles(2))
	baseDigest := string(m1.Layers[0].Hash)
	hold.set(baseDigest)
	h.reg.Counter().Reset()
	h.postManifest(m1)
	h.postManifest(m2)
	waitFor(t, "a job in each process, one fetching the base", 60*time.Second, func() bool {
		return h.count(`SELECT count(DISTINCT holder) FROM lease WHERE digest LIKE 'sha256:%'`) == 2 &&
			h.count(`SELECT count(*) FROM lease WHERE digest LIKE 'layer:%'`) == 1 && h.reg.Counter().InFlight() > 0
	})
	time.Sleep(300 * time.Millisecond) // let the other job reach the claim too
	close(hold.open)
	for _, m := range []*report.Manifest{m1, m2} {
		if r := h.wait(m.Hash); r.State != report.StateIndexFinished || len(r.Packages) != 2 {
			t.Fatalf("%s: state %s, %q", m.Hash, r.State, r.Err)
		}
	}
	if n := h.reg.Counter().BlobFetches(baseDigest); n != 1 {
		t.Fatalf("the shared base was fetched %d times by two processes, want 1", n)
	}
	var writers int
	h.pool.QueryRow(context.Background(), `SELECT count(DISTINCT fence) FROM report_log WHERE state = 'IndexFinished'`).Scan(&writers)
	if writers != 2 {
		t.Fatalf("%d distinct final writers, want 2 (one job per process)", writers)
	}
}

// TestCorruptCacheFileIsCaughtAndReplaced: a cached base layer is tampered
// with; the next read of it notices, removes it, fetches the layer from the
// registry again, caches the good copy, and counts a verify failure.
func TestCorruptCacheFileIsCaughtAndReplaced(t *testing.T) {
	h := newHarness(t)
	reader := sdkmetric.NewManualReader()
	cfg := h.config(1, true)
	cfg.BlobCacheDir, cfg.BlobCacheSize = t.TempDir(), 1<<30
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	n := h.start(cfg)
	if n.BlobCache == nil {
		t.Fatal("no blob cache")
	}
	m := h.push("cache/app:1", baseFiles(3), topFiles(1))
	base := m.Layers[0].Hash
	h.postManifest(m)
	if r := h.wait(m.Hash); r.State != report.StateIndexFinished {
		t.Fatalf("state %s %q", r.State, r.Err)
	}
	if !n.BlobCache.Contains(base) {
		t.Fatal("the base was not cached")
	}
	// Forget the results (the layers were this manifest's only), then
	// tamper with the cached base.
	req, _ := http.NewRequest(http.MethodDelete, h.api.URL+"/indexer/api/v1/index_report/"+string(m.Hash), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", resp, err)
	}
	resp.Body.Close()
	p := n.BlobCache.Path(base)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}

	h.postManifest(m)
	r := h.wait(m.Hash)
	if r.State != report.StateIndexFinished || len(r.Packages) != 2 {
		t.Fatalf("after tampering: state %s, %d packages, %q", r.State, len(r.Packages), r.Err)
	}
	if got := h.reg.Counter().BlobFetches(string(base)); got != 2 {
		t.Fatalf("base fetched %d times from the registry, want 2 (first run, and after the corrupt copy)", got)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("no good copy cached again: %v", err)
	}
	sum := sha256.Sum256(got)
	if "sha256:"+hex.EncodeToString(sum[:]) != string(base) {
		t.Fatal("the cached copy still does not match its digest")
	}
	sums := metricSums(t, reader)
	if sums["stevedore.blobcache.verify_failures"] != 1 || sums["stevedore.blobcache.hits"] < 1 || sums["stevedore.blobcache.misses"] < 2 {
		t.Fatalf("metrics %v: want 1 verify failure, a hit, 2+ misses", sums)
	}
}

// blobLog returns the registry's log of GETs of one blob.
func blobLog(h *harness, digest string) []devregistry.Request {
	var out []devregistry.Request
	for _, r := range h.reg.Counter().Log() {
		if r.Class == devregistry.ClassBlobs && r.Method == http.MethodGet && r.Ref == digest {
			out = append(out, r)
		}
	}
	return out
}

// TestRetryAfterIsWaitedFor: the registry answers a layer's first two GETs
// with 429 and Retry-After: 2. The worker waits ~2 s each time, sends
// nothing to the registry meanwhile (the other layer's download waits
// too), and finishes.
func TestRetryAfterIsWaitedFor(t *testing.T) {
	var mu sync.Mutex
	var target string
	left := 2
	throttle := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hit := target != "" && devregistry.BlobGet(target)(r) && left > 0
			if hit {
				left--
			}
			mu.Unlock()
			if hit {
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	h := newHarness(t, devregistry.WithMiddleware(throttle))
	h.start(h.config(1, true))
	m := h.push("throttled/app:1", baseFiles(4), topFiles(1))
	mu.Lock()
	target = string(m.Layers[0].Hash)
	mu.Unlock()
	h.reg.Counter().Reset()
	h.postManifest(m)
	if r := h.wait(m.Hash); r.State != report.StateIndexFinished {
		t.Fatalf("state %s %q", r.State, r.Err)
	}
	gets := blobLog(h, target)
	if len(gets) != 3 || gets[0].Status != 429 || gets[1].Status != 429 || gets[2].Status != 200 {
		var st []int
		for _, g := range gets {
			st = append(st, g.Status)
		}
		t.Fatalf("GETs of the throttled layer: %v, want [429 429 200]", st)
	}
	for i := 1; i < len(gets); i++ {
		if gap := gets[i].Time.Sub(gets[i-1].Time); gap < 1800*time.Millisecond {
			t.Errorf("GET %d sent %s after a 429 with Retry-After: 2", i+1, gap)
		}
	}
	// Nothing at all was sent to the registry while it asked to wait.
	for _, r := range h.reg.Counter().Log() {
		for _, g := range gets[:2] {
			if d := r.Time.Sub(g.Time); d > 300*time.Millisecond && d < 1700*time.Millisecond {
				t.Errorf("%s %s sent %s after a 429, while the registry asked to wait", r.Method, r.Path, d)
			}
		}
	}
	t.Logf("%d requests in all; GETs of the layer at +0, +%s, +%s", len(h.reg.Counter().Log()),
		gets[1].Time.Sub(gets[0].Time).Round(time.Millisecond), gets[2].Time.Sub(gets[0].Time).Round(time.Millisecond))
}

// TestServerErrorsAreRetried: 500 twice, then the layer.
func TestServerErrorsAreRetried(t *testing.T) {
	var mu sync.Mutex
	var target string
	h := newHarness(t, devregistry.WithMiddleware(devregistry.Fail(http.StatusInternalServerError, 2, func(r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		return target != "" && devregistry.BlobGet(target)(r)
	})))
	h.start(h.config(1, true))
	m := h.push("flaky/app:1", topFiles(1), topFiles(2))
	mu.Lock()
	target = string(m.Layers[0].Hash)
	mu.Unlock()
	h.postManifest(m)
	if r := h.wait(m.Hash); r.State != report.StateIndexFinished {
		t.Fatalf("state %s %q", r.State, r.Err)
	}
	var st []int
	for _, g := range blobLog(h, target) {
		st = append(st, g.Status)
	}
	if fmt.Sprint(st) != "[500 500 200]" {
		t.Fatalf("GETs of the layer: %v, want [500 500 200]", st)
	}
	if runs, _ := h.runs(m.Hash); runs != 1 {
		t.Fatalf("%d runs, want 1: the retries were the client's, not the job's", runs)
	}
}

// TestRegistryOutsideAllowlistIsRefused: with an allowlist, the API refuses
// references and layer URIs naming other registries, with 403 and the
// reason, and queues nothing.
func TestRegistryOutsideAllowlistIsRefused(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(1, true)
	cfg.Registries = registry.Config{Allowlist: registry.Allowlist{h.reg.Addr}}
	h.start(cfg)
	m := h.push("allowed/app:1", topFiles(1))
	evil := &report.Manifest{Hash: report.Digest("sha256:" + strings.Repeat("e", 64)), Layers: []*report.Layer{
		{Hash: m.Layers[0].Hash, URI: m.Layers[0].URI},
		{Hash: report.Digest("sha256:" + strings.Repeat("f", 64)), URI: "https://169.254.169.254/v2/x/blobs/sha256:" + strings.Repeat("f", 64)},
	}}
	evilBody, _ := json.Marshal(evil)
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"reference to another registry", "/api/v1/index", `{"reference": "registry.evil.example:5000/app:1"}`, 403, `registry \"registry.evil.example:5000\" is not allowed`},
		{"Docker Hub reference", "/api/v1/index", `{"reference": "debian:12"}`, 403, "index.docker.io"},
		{"layer URI on another host", "/indexer/api/v1/index_report", string(evilBody), 403, `layers[1].uri: registry \"169.254.169.254\" is not allowed`},
		{"allowed reference", "/api/v1/index", `{"reference": "` + h.reg.Ref("allowed/app:1") + `"}`, 202, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, e := h.send("POST", tc.path, "application/json", tc.body)
			if status != tc.status {
				t.Fatalf("HTTP %d (%s: %s), want %d", status, e.Code, e.Message, tc.status)
			}
			if tc.status == 403 && (e.Code != "registry-not-allowed" || !strings.Contains(e.Message, strings.ReplaceAll(tc.want, `\"`, `"`))) {
				t.Fatalf("answer %s: %s; want registry-not-allowed and %q", e.Code, e.Message, tc.want)
			}
		})
	}
	if r := h.wait(m.Hash); r.State != report.StateIndexFinished {
		t.Fatalf("allowed image: state %s %q", r.State, r.Err)
	}
	if n := h.count(`SELECT count(*) FROM index_report WHERE manifest_hash = $1`, string(evil.Hash)); n != 0 {
		t.Fatal("a refused manifest was recorded")
	}
}
