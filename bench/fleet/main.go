// Command fleet measures how Stevedore fetches layers at fleet scale: each
// layer once, whatever the number of images sharing it and of workers
// needing it at the same moment, and nothing at all when the fleet has
// scanned it before.
//
// It serves, from an in-process registry that counts the bytes it serves
// (internal/testing/devregistry), 20 images that share one real base layer (the Debian
// bookworm minbase root filesystem of scripts/build-debian-rootfs.sh, ~47
// MB, cached in ~/.cache/stevedore and built when missing) with a small
// distinct top layer each, and one multi-layer image (the same base and
// five layers of its own). Then, for each fleet shape, in a fresh Postgres
// schema (DATABASE_URL, or 127.0.0.1:5432/test) and a fresh embedded NATS
// JetStream, with cold blob caches:
//
//  1. cold: all 21 images are submitted at once to the dispatcher (in this
//     process) and indexed by the workers (in worker processes: this binary
//     run again), until every report is finished;
//  2. warm re-index: every report is marked for re-index (as `stevedore
//     reindex --all` does) and indexed again by the same, warm, fleet.
//
// The shapes are 1 worker in 1 process, and 4 workers in 2 processes. In the
// same run it measures the floor: the raw gzip decompression of each unique
// layer once (what a fleet that reads each layer once cannot avoid), and of
// every image's layers (what indexing each image on its own would read).
// It prints a table: wall time, images per second, the registry's layer
// bytes served divided by the sum of the unique layers' sizes (goal: at
// most 1.05), and the base layer's downloads.
//
//	go run ./bench/fleet
//	go run ./bench/fleet -images 20 -base ~/.cache/stevedore/debian-bookworm-minbase.tar.gz
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/gzip"

	"github.com/stevedore-dev/stevedore/bench/internal/benchdb"
	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
)

const childEnv = "STEVEDORE_FLEET_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, "fleet worker:", err)
			os.Exit(1)
		}
		return
	}
	home, _ := os.UserHomeDir()
	var (
		images  = flag.Int("images", 20, "images sharing the base layer")
		base    = flag.String("base", filepath.Join(home, ".cache", "stevedore", "debian-bookworm-minbase.tar.gz"), "the shared base layer, a gzipped rootfs tarball (built with scripts/build-debian-rootfs.sh when missing)")
		dbURL   = benchdb.URLFlag("each fleet runs in a fresh schema, dropped at the end")
		verbose = flag.Bool("v", false, "log the workers' and the dispatcher's warnings and progress")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelError
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	benchdb.ExitOn("fleet", run(ctx, log, *images, *base, *dbURL, *verbose))
}

// fixture is what the registry serves.
type fixture struct {
	manifests []*report.Manifest
	base      report.Layer
	// unique are the distinct layers, with their sizes.
	unique map[report.Digest]int64
	// files hold each layer's compressed bytes, for the floor.
	files map[report.Digest]string
}

func (f *fixture) uniqueBytes() int64 {
	var n int64
	for _, s := range f.unique {
		n += s
	}
	return n
}

// result is one row of the table.
type result struct {
	name    string
	workers string
	wall    time.Duration
	images  int
	bytes   int64
	ratio   float64
	base    int // downloads of the base layer
	note    string
}

func run(ctx context.Context, log *slog.Logger, nImages int, basePath, dbURL string, verbose bool) error {
	if err := ensureBase(basePath); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "stevedore-fleet-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	if err := os.MkdirAll(filepath.Join(tmp, "registry"), 0o755); err != nil {
		return fmt.Errorf("registry directory: %w", err)
	}
	reg := devregistry.New(devregistry.WithBlobDir(filepath.Join(tmp, "registry")))
	srv, err := reg.Start(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer srv.Close()
	fx, err := build(ctx, srv, basePath, nImages, filepath.Join(tmp, "layers"))
	if err != nil {
		return err
	}
	fmt.Printf("%d images: %d sharing the base layer %s (%.1f MB) with a small top layer each, 1 with %d layers; %d unique layers, %.1f MB\n",
		len(fx.manifests), nImages, fx.base.Hash.Hex()[:12], mb(fx.base.Size), len(fx.manifests[len(fx.manifests)-1].Layers), len(fx.unique), mb(fx.uniqueBytes()))

	var rows []result
	floorUnique, floorAll, err := floor(fx)
	if err != nil {
		return err
	}
	for _, shape := range []struct {
		name           string
		procs, workers int
	}{
		{"1 worker", 1, 1},
		{"4 workers in 2 processes", 2, 2},
	} {
		rs, err := fleet(ctx, log, srv, fx, dbURL, tmp, shape.name, shape.procs, shape.workers, verbose)
		if err != nil {
			return fmt.Errorf("%s: %w", shape.name, err)
		}
		rows = append(rows, rs...)
	}
	n := len(fx.manifests)
	rows = append(rows,
		result{name: "floor: gunzip each unique layer once", workers: "1 core", wall: floorUnique, images: n, ratio: math.NaN(), base: -1, note: "in this process, no registry"},
		result{name: "gunzip every image's layers", workers: "1 core", wall: floorAll, images: n, ratio: math.NaN(), base: -1, note: "what indexing each image alone reads"},
	)
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "run\tworkers\twall\timages/s\tlayer bytes served\tserved ÷ unique\tbase downloads\t")
	for _, r := range rows {
		ratio, base, bytes := "-", "-", "-"
		if !math.IsNaN(r.ratio) {
			ratio = fmt.Sprintf("%.3f", r.ratio)
			bytes = fmt.Sprintf("%.2f MB", mb(r.bytes))
		}
		if r.base >= 0 {
			base = strconv.Itoa(r.base)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t\n", r.name, r.workers, r.wall.Round(10*time.Millisecond), float64(r.images)/r.wall.Seconds(), bytes, ratio, base)
	}
	tw.Flush()
	return nil
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// ensureBase builds the base rootfs with scripts/build-debian-rootfs.sh when
// it is missing.
func ensureBase(path string) error {
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return nil
	}
	root, err := fixtures.RepoRoot()
	if err != nil {
		return fmt.Errorf("base layer %s is missing and the script to build it was not found: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("base layer: %w", err)
	}
	fmt.Fprintf(os.Stderr, "building %s with scripts/build-debian-rootfs.sh (needs root; a few minutes)\n", path)
	cmd := exec.Command(filepath.Join(root, "scripts", "build-debian-rootfs.sh"), path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build the base layer (run scripts/build-debian-rootfs.sh %s as root): %w", path, err)
	}
	return nil
}

// build pushes the images and returns their manifests as the dispatcher
// resolves them.
func build(ctx context.Context, srv *devregistry.Server, basePath string, nImages int, dir string) (*fixture, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	baseLayer, err := tarball.LayerFromFile(basePath)
	if err != nil {
		return nil, fmt.Errorf("base layer %s: %w", basePath, err)
	}
	b := &fixtureBuilder{
		srv: srv, dir: dir, r: mrand.New(mrand.NewPCG(1, 2)),
		fx: &fixture{unique: map[report.Digest]int64{}, files: map[report.Digest]string{}},
	}
	if err := b.record(baseLayer, basePath); err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	for i := range nImages {
		top, err := b.layer(fmt.Sprintf("app%02d", i), 16<<10)
		if err != nil {
			return nil, fmt.Errorf("top layer %d: %w", i, err)
		}
		if err := b.push(ctx, fmt.Sprintf("fleet/app%02d", i), baseLayer, top); err != nil {
			return nil, err
		}
	}
	multi := []v1.Layer{baseLayer}
	for i := range 5 {
		l, err := b.layer(fmt.Sprintf("multi%d", i), 256<<10)
		if err != nil {
			return nil, fmt.Errorf("multi-layer image, layer %d: %w", i, err)
		}
		multi = append(multi, l)
	}
	if err := b.push(ctx, "fleet/multi", multi...); err != nil {
		return nil, err
	}
	b.fx.base = *b.fx.manifests[0].Layers[0]
	return b.fx, nil
}

// fixtureBuilder writes the fixture's layers to dir and pushes its images.
type fixtureBuilder struct {
	srv *devregistry.Server
	dir string
	r   *mrand.Rand
	fx  *fixture
}

// record notes l, whose compressed bytes are in file, as a unique layer.
func (b *fixtureBuilder) record(l v1.Layer, file string) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	b.fx.unique[report.Digest(d.String())] = size
	b.fx.files[report.Digest(d.String())] = file
	return nil
}

// layer writes a small layer to a file: a few configuration files, and
// size bytes of incompressible data.
func (b *fixtureBuilder) layer(name string, size int) (v1.Layer, error) {
	files := map[string][]byte{
		"etc/" + name + "/app.conf":         []byte("name = " + name + "\n"),
		"usr/share/doc/" + name + "/README": []byte(strings.Repeat(name+" ", 200)),
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(b.r.Uint32())
	}
	files["opt/"+name+"/data.bin"] = data
	tb, err := devregistry.TarFromFiles(files)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(b.dir, name+".tar")
	if err := os.WriteFile(p, tb, 0o644); err != nil {
		return nil, err
	}
	gz := p + ".gz"
	if err := gzipFile(p, gz); err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromFile(gz)
	if err != nil {
		return nil, err
	}
	return l, b.record(l, gz)
}

// push pushes an image of layers ls as repo:1, and records its manifest as
// the dispatcher resolves it.
func (b *fixtureBuilder) push(ctx context.Context, repo string, ls ...v1.Layer) error {
	ref := b.srv.Ref(repo + ":1")
	if _, err := devregistry.PushLayers(ctx, ref, ls...); err != nil {
		return err
	}
	imgs, err := resolve.New().Resolve(ctx, ref, "")
	if err != nil {
		return err
	}
	b.fx.manifests = append(b.fx.manifests, imgs[0].Manifest)
	return nil
}

func gzipFile(in, out string) error {
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(dst)
	if _, err := io.Copy(zw, src); err != nil {
		dst.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// floor times the raw decompression of each unique layer once, and of every
// image's layers.
func floor(fx *fixture) (unique, all time.Duration, err error) {
	gunzip := func(p string) error {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	}
	// Warm the page cache, so that disk reads do not count.
	for _, p := range fx.files {
		if err := gunzip(p); err != nil {
			return 0, 0, err
		}
	}
	start := time.Now()
	for _, p := range fx.files {
		if err := gunzip(p); err != nil {
			return 0, 0, err
		}
	}
	unique = time.Since(start)
	start = time.Now()
	for _, m := range fx.manifests {
		for _, l := range m.Layers {
			if err := gunzip(fx.files[l.Hash]); err != nil {
				return 0, 0, err
			}
		}
	}
	return unique, time.Since(start), nil
}

// fleet runs one fleet shape: a dispatcher here, procs worker processes of
// workers jobs each; the cold run, then the warm re-index.
func fleet(ctx context.Context, log *slog.Logger, srv *devregistry.Server, fx *fixture, baseURL, tmp, name string, procs, workers int, verbose bool) ([]result, error) {
	dbURL, drop, err := benchdb.FreshSchema(ctx, baseURL, "fleet")
	if err != nil {
		return nil, err
	}
	defer drop()
	dir, err := os.MkdirTemp(tmp, "fleet-")
	if err != nil {
		return nil, err
	}
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n, err := app.Start(nctx, app.Config{
		DatabaseURL: dbURL, NATSStoreDir: filepath.Join(dir, "nats"), Dispatcher: true,
		ReindexRate: 1000, SweepInterval: 100 * time.Millisecond, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	defer n.Close()
	done := make(chan struct{})
	go func() { defer close(done); n.Run(nctx) }()
	defer func() { cancel(); <-done }()

	wp := &workerProcesses{}
	defer wp.stop()
	for p := range procs {
		if err := wp.start(nctx, p, dbURL, n.NATSURL, dir, workers, verbose); err != nil {
			return nil, err
		}
	}
	shape := fmt.Sprintf("%d × %d", procs, workers)
	cold, err := coldRun(ctx, srv, n, fx, name, shape)
	if err != nil {
		return nil, err
	}
	warm, err := warmRun(ctx, srv, n, fx, name, shape)
	if err != nil {
		return nil, err
	}
	return []result{cold, warm}, nil
}

// workerProcesses are the fleet's worker processes.
type workerProcesses struct {
	children []*exec.Cmd
	stdins   []io.Closer
}

// start starts worker process p, of workers jobs, and waits until it is
// ready.
func (wp *workerProcesses) start(ctx context.Context, p int, dbURL, natsURL, dir string, workers int, verbose bool) error {
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", "DATABASE_URL="+dbURL, "NATS_URL="+natsURL,
		"FLEET_WORKERS="+strconv.Itoa(workers), "FLEET_CACHE_DIR="+filepath.Join(dir, fmt.Sprintf("cache%d", p)),
		"FLEET_HOLDER="+fmt.Sprintf("worker-process-%d", p), "FLEET_VERBOSE="+strconv.FormatBool(verbose))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	// The worker process ends when its stdin closes: when this
	// process ends, however it ends.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	wp.stdins = append(wp.stdins, stdin)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a worker process: %w", err)
	}
	wp.children = append(wp.children, cmd)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("worker process %d did not start: %q %v", p, line, err)
	}
	return nil
}

// stop closes every worker process's stdin, then sends each SIGTERM and
// waits for it.
func (wp *workerProcesses) stop() {
	for _, in := range wp.stdins {
		in.Close()
	}
	for _, c := range wp.children {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}
}

// coldRun indexes every image at once, and measures until every report is
// finished.
func coldRun(ctx context.Context, srv *devregistry.Server, n *app.Node, fx *fixture, name, shape string) (result, error) {
	st := n.Store
	srv.Counter().Reset()
	start := time.Now()
	for _, m := range fx.manifests {
		if _, _, err := n.Dispatcher.Index(ctx, m); err != nil {
			return result{}, err
		}
	}
	if err := waitFinished(ctx, st, fx.manifests, nil); err != nil {
		return result{}, err
	}
	first, err := st.Report(ctx, fx.manifests[0].Hash)
	if err != nil {
		return result{}, err
	}
	if len(first.Packages) == 0 {
		return result{}, fmt.Errorf("the first image's report lists no package (state %s, %q)", first.State, first.Err)
	}
	fmt.Fprintf(os.Stderr, "%s: the first image's report lists %d packages\n", name, len(first.Packages))
	cold := result{name: "cold, " + name, workers: shape, wall: time.Since(start), images: len(fx.manifests),
		bytes: srv.Counter().BlobBytes(), base: srv.Counter().BlobFetches(string(fx.base.Hash))}
	cold.ratio = float64(cold.bytes) / float64(fx.uniqueBytes())
	return cold, nil
}

// warmRun has the same fleet index every report again, and measures until
// every report is rewritten.
func warmRun(ctx context.Context, srv *devregistry.Server, n *app.Node, fx *fixture, name, shape string) (result, error) {
	st := n.Store
	fences, err := reportFences(ctx, st, fx.manifests)
	if err != nil {
		return result{}, err
	}
	srv.Counter().Reset()
	start := time.Now()
	if _, err := st.RequestReindex(ctx, nil, true, false, n.Dispatcher.State()); err != nil {
		return result{}, err
	}
	if err := waitFinished(ctx, st, fx.manifests, fences); err != nil {
		return result{}, err
	}
	warm := result{name: "re-index all, warm fleet, " + name, workers: shape, wall: time.Since(start), images: len(fx.manifests),
		bytes: srv.Counter().BlobBytes(), base: srv.Counter().BlobFetches(string(fx.base.Hash))}
	warm.ratio = float64(warm.bytes) / float64(fx.uniqueBytes())
	return warm, nil
}

func reportFences(ctx context.Context, st *postgres.Store, ms []*report.Manifest) (map[report.Digest]int64, error) {
	out := map[report.Digest]int64{}
	for _, m := range ms {
		var f int64
		if err := st.Pool().QueryRow(ctx, `SELECT fence FROM index_report WHERE manifest_hash = $1`, string(m.Hash)).Scan(&f); err != nil {
			return nil, fmt.Errorf("report of %s: %w", m.Hash, err)
		}
		out[m.Hash] = f
	}
	return out, nil
}

// waitFinished polls until every report is finished, written by a newer
// fence than in after (when given).
func waitFinished(ctx context.Context, st *postgres.Store, ms []*report.Manifest, after map[report.Digest]int64) error {
	deadline := time.Now().Add(15 * time.Minute)
	for {
		left := 0
		for _, m := range ms {
			var state string
			var fence int64
			err := st.Pool().QueryRow(ctx, `SELECT state, fence FROM index_report WHERE manifest_hash = $1`, string(m.Hash)).Scan(&state, &fence)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				left++
			case err != nil:
				return err
			case state == string(report.StateIndexError):
				r, _ := st.Report(ctx, m.Hash)
				return fmt.Errorf("%s: IndexError: %s", m.Hash, r.Err)
			case state != string(report.StateIndexFinished) || (after != nil && fence <= after[m.Hash]):
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d reports not finished in time", left)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// child is a worker process: it runs until its stdin closes or SIGTERM.
func child() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	workers, _ := strconv.Atoi(os.Getenv("FLEET_WORKERS"))
	level := slog.LevelError
	if os.Getenv("FLEET_VERBOSE") == "true" {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("process", os.Getenv("FLEET_HOLDER"))
	n, err := app.Start(ctx, app.Config{
		DatabaseURL: os.Getenv("DATABASE_URL"), NATSURL: os.Getenv("NATS_URL"), Workers: workers,
		Holder: os.Getenv("FLEET_HOLDER"), BlobCacheDir: os.Getenv("FLEET_CACHE_DIR"), BlobCacheSize: 4 << 30, Logger: log,
	})
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Println("ready")
	return n.Run(ctx)
}
