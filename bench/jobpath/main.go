// Command jobpath measures the per-job overhead of issue 13, goal 1: how
// long a small (~1 MB) single-layer RHEL-like image takes from the request
// to its stored terminal report, beside its floor (sha256 of the blob,
// inflate and tar walk, in this process), and where the time goes.
//
// A node (dispatcher and one worker, embedded JetStream, in this process,
// on a fresh schema of DATABASE_URL) serves its API on loopback; an
// in-process registry (internal/testing/devregistry) serves -reps images,
// each one layer of a real rpm database (testdata/fixtures/rpm, preflight's
// sqlite rpmdb), a RHEL os-release and incompressible data, made distinct
// by one small file. Each image is asked for with Clair's POST
// index_report, which answers when the report is terminal. The node's
// spans are recorded (an SDK tracer provider with an in-memory recorder):
// the command prints the request-to-report time and the floor (medians),
// the spans of the median request as a waterfall (start and duration from
// the request's start), and each span name's median duration over the
// requests.
//
//	go run ./bench/jobpath
//	go run ./bench/jobpath -reps 20
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stevedore-dev/stevedore/bench/internal/benchdb"
	"github.com/stevedore-dev/stevedore/bench/internal/benchserve"
	"github.com/stevedore-dev/stevedore/bench/internal/rhelimage"
	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

func main() {
	var (
		reps            = flag.Int("reps", 15, "images indexed (each a new one)")
		fixture, filler = rhelimage.Flags()
		dbURL           = benchdb.URLFlag("a fresh schema is used and dropped")
	)
	flag.Parse()
	benchdb.ExitOn("jobpath", run(context.Background(), *reps, *fixture, *filler, *dbURL))
}

type image struct {
	m    *report.Manifest
	blob []byte
}

func run(ctx context.Context, reps int, fixture string, filler int, dbURL string) error {
	src, err := rhelimage.NewSource(fixture, filler)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "stevedore-jobpath-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	reg := devregistry.New(devregistry.WithBlobDir(filepath.Join(tmp, "registry")))
	if err := os.MkdirAll(filepath.Join(tmp, "registry"), 0o755); err != nil {
		return err
	}
	rsrv, err := reg.Start(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer rsrv.Close()
	imgs, err := images(ctx, rsrv, reps+1, src)
	if err != nil {
		return err
	}

	schemaURL, drop, err := benchdb.FreshSchema(ctx, dbURL, "jobpath")
	if err != nil {
		return err
	}
	defer drop()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n, err := app.Start(nctx, app.Config{
		DatabaseURL: schemaURL, NATSStoreDir: filepath.Join(tmp, "nats"), Dispatcher: true, Workers: 1,
		BlobCacheDir: filepath.Join(tmp, "blobs"), TracerProvider: tp,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	defer n.Close()
	done := make(chan struct{})
	go func() { defer close(done); n.Run(nctx) }()
	defer func() { cancel(); <-done }()
	base, closeAPI, err := benchserve.Serve(n.Handler)
	if err != nil {
		return err
	}
	defer closeAPI()

	// The first image warms up (connections, statements, caches).
	if _, err := index(base, imgs[0].m); err != nil {
		return err
	}
	rec.Reset()
	walls := make([]time.Duration, 0, reps)
	floors := make([]time.Duration, 0, reps)
	for _, img := range imgs[1:] {
		w, err := index(base, img.m)
		if err != nil {
			return err
		}
		walls = append(walls, w)
		f, err := floor(img.blob)
		if err != nil {
			return err
		}
		floors = append(floors, f)
	}
	print(rec.Ended(), walls, floors, imgs[1].blob)
	return nil
}

// images pushes n new images of src.
func images(ctx context.Context, srv *devregistry.Server, n int, src *rhelimage.Source) ([]image, error) {
	imgs := make([]image, 0, n)
	for i := range n {
		img, err := push(ctx, srv, i, src)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// push pushes image i of src to the registry.
func push(ctx context.Context, srv *devregistry.Server, i int, src *rhelimage.Source) (image, error) {
	l, err := src.Layer(int64(i))
	if err != nil {
		return image{}, err
	}
	ref := srv.Ref(fmt.Sprintf("jobpath/img%03d:1", i))
	if _, err := devregistry.PushLayers(ctx, ref, []v1.Layer{l}...); err != nil {
		return image{}, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return image{}, err
	}
	defer rc.Close()
	blob, err := io.ReadAll(rc)
	if err != nil {
		return image{}, err
	}
	ms, err := resolve.New().Resolve(ctx, ref, "")
	if err != nil {
		return image{}, err
	}
	return image{m: ms[0].Manifest, blob: blob}, nil
}

// index asks for m with Clair's POST index_report and returns the time to
// its 201 (the report is terminal and stored).
func index(base string, m *report.Manifest) (time.Duration, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := http.Post(base+"/indexer/api/v1/index_report", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r report.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("index %s: HTTP %d: %w", m.Hash, resp.StatusCode, err)
	}
	wall := time.Since(start)
	if resp.StatusCode != http.StatusCreated || r.State != report.StateIndexFinished || len(r.Packages) == 0 {
		return 0, fmt.Errorf("index %s: HTTP %d, state %s, %d packages", m.Hash, resp.StatusCode, r.State, len(r.Packages))
	}
	return wall, nil
}

// floor is the physical floor of reading blob: its sha256, inflate and a
// walk of its tar entries, each read whole.
func floor(blob []byte) (time.Duration, error) {
	start := time.Now()
	sum := sha256.Sum256(blob)
	_ = sum
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		return 0, err
	}
	tr := tar.NewReader(zr)
	for {
		if _, err := tr.Next(); err == io.EOF {
			break
		} else if err != nil {
			return 0, err
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// print prints the figures, the median request's spans and every span
// name's median duration.
func print(spans []sdktrace.ReadOnlySpan, walls, floors []time.Duration, blob []byte) {
	wall, fl := median(walls), median(floors)
	fmt.Printf("image: 1 layer, %d bytes compressed; %d requests, one after the other\n", len(blob), len(walls))
	fmt.Printf("request to stored terminal report: median %.1f ms (min %.1f, max %.1f)\n", ms(wall), ms(slices.Min(walls)), ms(slices.Max(walls)))
	fmt.Printf("floor (sha256 + inflate + tar walk): median %.2f ms\n", ms(fl))
	fmt.Printf("beyond the floor: %.1f ms; ÷ floor %.1f\n\n", ms(wall-fl), float64(wall)/float64(fl))

	byTrace := map[string][]sdktrace.ReadOnlySpan{}
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		id := s.SpanContext().TraceID().String()
		byTrace[id] = append(byTrace[id], s)
		if !s.Parent().IsValid() && s.Name() == "POST /indexer/api/v1/index_report" {
			roots = append(roots, s)
		}
	}
	if len(roots) > 0 {
		sort.Slice(roots, func(i, j int) bool { return dur(roots[i]) < dur(roots[j]) })
		root := roots[len(roots)/2]
		tr := byTrace[root.SpanContext().TraceID().String()]
		sort.Slice(tr, func(i, j int) bool { return tr[i].StartTime().Before(tr[j].StartTime()) })
		fmt.Printf("spans of the median request (trace %s), ms from the request's start:\n", root.SpanContext().TraceID())
		fmt.Printf("%9s %9s  %s\n", "start", "duration", "span")
		for _, s := range tr {
			fmt.Printf("%9.2f %9.2f  %s%s\n", ms(s.StartTime().Sub(root.StartTime())), ms(dur(s)), indent(s, tr), s.Name())
		}
		fmt.Println()
	}
	names := map[string][]time.Duration{}
	for _, s := range spans {
		names[s.Name()] = append(names[s.Name()], dur(s))
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return median(names[keys[i]]) > median(names[keys[j]]) })
	fmt.Printf("%-60s %6s %10s\n", "span (all traces)", "count", "median ms")
	for _, k := range keys {
		fmt.Printf("%-60s %6d %10.2f\n", k, len(names[k]), ms(median(names[k])))
	}
}

func dur(s sdktrace.ReadOnlySpan) time.Duration { return s.EndTime().Sub(s.StartTime()) }

// indent is two spaces per ancestor of s in tr.
func indent(s sdktrace.ReadOnlySpan, tr []sdktrace.ReadOnlySpan) string {
	parent := map[string]string{}
	for _, t := range tr {
		parent[t.SpanContext().SpanID().String()] = t.Parent().SpanID().String()
	}
	out := ""
	for id := s.Parent().SpanID().String(); ; id = parent[id] {
		if _, ok := parent[id]; !ok {
			return out
		}
		out += "  "
	}
}
