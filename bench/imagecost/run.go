package main

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stevedore-dev/stevedore/bench/internal/benchdb"
	"github.com/stevedore-dev/stevedore/bench/internal/benchserve"
	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

type config struct {
	cycles int
	spans  bool
	poll   time.Duration
	dbURL  string
	only   string
}

// node is the running node under measurement.
type node struct {
	api      string // base URL of its API
	reg      *devregistry.Server
	blobDir  string // the node's blob cache
	poll     time.Duration
	imageSeq int
	rec      *tracetest.SpanRecorder
}

// sample is one cycle's figures for one image.
type sample struct {
	floor, index time.Duration
	spans        map[string]time.Duration // the job's spans, summed by name
}

func run(ctx context.Context, src sources, cfg config) error {
	ss, err := specs(src)
	if err != nil {
		return err
	}
	imgs := make([]image, 0, len(ss))
	for _, s := range ss {
		if s.name != ss[0].name && !selected(s.name, cfg.only) {
			continue
		}
		img, err := prepare(s)
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
	}
	ss = nil
	tmp, err := os.MkdirTemp("", "stevedore-imagecost-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	n, stop, err := startNode(ctx, tmp, cfg)
	if err != nil {
		return err
	}
	defer stop()
	// Warm up: connections, statements, the first job's caches.
	if _, err := n.measure(ctx, imgs[0], "warm-up"); err != nil {
		return err
	}
	samples := make([][]sample, len(imgs))
	for c := range cfg.cycles {
		for i, img := range imgs {
			s, err := n.measure(ctx, img, fmt.Sprintf("cycle %d %d", c, time.Now().UnixNano()))
			if err != nil {
				return fmt.Errorf("%s: %w", img.name, err)
			}
			samples[i] = append(samples[i], s)
			fmt.Fprintf(os.Stderr, "cycle %d %-40s floor %7.3f s  index-only %7.3f s\n", c+1, img.name, s.floor.Seconds(), s.index.Seconds())
		}
		if err := emptyDir(n.blobDir); err != nil {
			return err
		}
	}
	printTable(imgs, samples, cfg)
	return nil
}

func selected(name, only string) bool {
	if only == "" {
		return true
	}
	for w := range strings.SplitSeq(only, ",") {
		if w != "" && strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// startNode starts the registry and the node (dispatcher and one worker,
// embedded JetStream, a fresh schema) with its API on loopback.
func startNode(ctx context.Context, tmp string, cfg config) (*node, func(), error) {
	regDir := filepath.Join(tmp, "registry")
	if err := os.MkdirAll(regDir, 0o755); err != nil {
		return nil, nil, err
	}
	rsrv, err := devregistry.New(devregistry.WithBlobDir(regDir)).Start(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	schemaURL, drop, err := benchdb.FreshSchema(ctx, cfg.dbURL, "imagecost")
	if err != nil {
		rsrv.Close()
		return nil, nil, err
	}
	nctx, cancel := context.WithCancel(ctx)
	blobDir := filepath.Join(tmp, "blobs")
	rec := tracetest.NewSpanRecorder()
	a, err := app.Start(nctx, app.Config{
		DatabaseURL: schemaURL, NATSStoreDir: filepath.Join(tmp, "nats"), Dispatcher: true, Workers: 1,
		BlobCacheDir: blobDir, TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		cancel()
		drop()
		rsrv.Close()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { defer close(done); a.Run(nctx) }()
	base, closeAPI, err := benchserve.Serve(a.Handler)
	stop := func() {
		if closeAPI != nil {
			closeAPI()
		}
		cancel()
		<-done
		a.Close()
		drop()
		rsrv.Close()
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return &node{api: base, reg: rsrv, blobDir: blobDir, poll: cfg.poll, rec: rec}, stop, nil
}

// measure pushes a new variant of img (its layers end with id), then
// measures its floor and its index-only time.
func (n *node) measure(ctx context.Context, img image, id string) (sample, error) {
	blobs, err := img.blobs(id)
	if err != nil {
		return sample{}, err
	}
	formats := make([]string, len(img.bodies))
	for i, b := range img.bodies {
		formats[i] = b.format
	}
	n.imageSeq++
	ref := n.reg.Ref(fmt.Sprintf("imagecost/img%04d:1", n.imageSeq))
	if err := push(ctx, ref, formats, blobs); err != nil {
		return sample{}, fmt.Errorf("push %s: %w", ref, err)
	}
	var s sample
	if s.floor, err = floor(formats, blobs); err != nil {
		return sample{}, err
	}
	// The manifest, to wait for its report with (not part of the time).
	imgs, err := resolve.New().Resolve(ctx, ref, "")
	if err != nil || len(imgs) != 1 {
		return sample{}, fmt.Errorf("resolve %s: %d manifests, %v", ref, len(imgs), err)
	}
	n.rec.Reset()
	if s.index, err = n.index(ctx, ref, imgs[0].Manifest); err != nil {
		return sample{}, err
	}
	s.spans = map[string]time.Duration{}
	for _, sp := range n.rec.Ended() {
		s.spans[sp.Name()] += sp.EndTime().Sub(sp.StartTime())
	}
	return s, nil
}

// floor reads every blob as the floor does: sha256, inflate, tar walk.
func floor(formats []string, blobs [][]byte) (time.Duration, error) {
	start := time.Now()
	for i, b := range blobs {
		if err := floorLayer(formats[i], b); err != nil {
			return 0, fmt.Errorf("floor of layer %d: %w", i, err)
		}
	}
	return time.Since(start), nil
}

func floorLayer(format string, blob []byte) error {
	sum := sha256.Sum256(blob)
	_ = sum
	var r io.Reader
	switch format {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			return err
		}
		r = zr
	default:
		zr, err := zstd.NewReader(bytes.NewReader(blob), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false), zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		if _, err := tr.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return err
		}
	}
}

// index posts ref to POST /api/v1/index and waits until its report (of
// manifest m) is terminal; it returns the time from the POST to the
// terminal state. It waits with Clair's POST index_report of m, which
// answers once the report is terminal (the job queued by the first POST:
// nothing more is queued), or, with -poll, by polling GET index_report.
func (n *node) index(ctx context.Context, ref string, m *report.Manifest) (time.Duration, error) {
	body, _ := json.Marshal(report.IndexRequest{Reference: ref})
	start := time.Now()
	resp, err := http.Post(n.api+"/api/v1/index", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	var ir report.IndexResponse
	err = json.NewDecoder(resp.Body).Decode(&ir)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted || len(ir.Manifests) != 1 {
		return 0, fmt.Errorf("POST /api/v1/index %s: HTTP %d, %d manifests, %v", ref, resp.StatusCode, len(ir.Manifests), err)
	}
	d := ir.Manifests[0].Digest
	if d != m.Hash {
		return 0, fmt.Errorf("POST /api/v1/index %s: manifest %s, resolved %s", ref, d, m.Hash)
	}
	if n.poll <= 0 {
		if err := n.wait(ctx, m); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	for {
		st, err := n.state(ctx, d)
		if err != nil {
			return 0, err
		}
		switch st {
		case report.StateIndexFinished:
			return time.Since(start), nil
		case report.StateIndexError:
			return 0, fmt.Errorf("index %s: %s", ref, st)
		}
		time.Sleep(n.poll)
	}
}

// wait asks for m with Clair's POST index_report, which answers 201 once
// its report is terminal.
func (n *node) wait(ctx context.Context, m *report.Manifest) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.api+"/indexer/api/v1/index_report", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		State report.State `json:"state"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusCreated || r.State != report.StateIndexFinished {
		return fmt.Errorf("POST index_report %s: HTTP %d, state %q, %v", m.Hash, resp.StatusCode, r.State, err)
	}
	return nil
}

// state is the state of d's report, "" while there is none.
func (n *node) state(ctx context.Context, d report.Digest) (report.State, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.api+"/indexer/api/v1/index_report/"+string(d), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		io.Copy(io.Discard, resp.Body)
		return "", nil
	}
	var r struct {
		State report.State `json:"state"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", fmt.Errorf("GET index_report %s: HTTP %d: %w", d, resp.StatusCode, err)
	}
	return r.State, nil
}

func emptyDir(dir string) error {
	es, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range es {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianF(fs []float64) float64 {
	s := slices.Clone(fs)
	slices.Sort(s)
	return s[len(s)/2]
}

// printTable prints per image: layers, sizes, floor and index-only medians,
// the ratio, and the part of the gap beyond the tiny image's (the per-job
// overhead).
func printTable(imgs []image, samples [][]sample, cfg config) {
	fixed := gap(samples[0])
	fmt.Printf("%d cycles; medians; per-job overhead (tiny image: index-only − floor) %.0f ms\n", cfg.cycles, fixed.Seconds()*1000)
	fmt.Printf("%-40s %6s %9s %9s %8s %11s %6s %8s %10s\n", "image", "layers", "MB comp.", "MB tar", "floor s", "index-only s", "ratio", "gap ms", "gap-fixed")
	for i, img := range imgs {
		var fl, ix []time.Duration
		var rs []float64
		for _, s := range samples[i] {
			fl = append(fl, s.floor)
			ix = append(ix, s.index)
			rs = append(rs, float64(s.index)/float64(s.floor))
		}
		g := gap(samples[i])
		fmt.Printf("%-40s %6d %9.1f %9.1f %8.3f %11.3f %6.2f %8.0f %10.0f\n", img.name, len(img.bodies),
			float64(img.compressedBytes())/1e6, float64(img.uncompressedBytes())/1e6,
			median(fl).Seconds(), median(ix).Seconds(), medianF(rs), g.Seconds()*1000, (g-fixed).Seconds()*1000)
	}
	if cfg.spans {
		for i, img := range imgs {
			printSpans(img.name, samples[i])
		}
	}
}

// printSpans prints the median over the cycles of each span name's summed
// duration in one job, the longest first.
func printSpans(name string, ss []sample) {
	by := map[string][]time.Duration{}
	for _, s := range ss {
		for k, d := range s.spans {
			by[k] = append(by[k], d)
		}
	}
	keys := slices.Collect(maps.Keys(by))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(median(by[b]), median(by[a])) })
	fmt.Printf("\nspans of %s (median ms over the cycles, summed per job):\n", name)
	for _, k := range keys {
		fmt.Printf("  %9.1f  %s\n", median(by[k]).Seconds()*1000, k)
	}
}

// gap is the median over the cycles of index-only − floor.
func gap(ss []sample) time.Duration {
	ds := make([]time.Duration, len(ss))
	for i, s := range ss {
		ds[i] = s.index - s.floor
	}
	return median(ds)
}
