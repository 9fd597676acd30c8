// Command startup measures the whole-process time of `stevedore scan` of an
// image whose report is already stored (issue 13, goal 3: start-up), for the
// stevedore binary built from this tree and, with -baseline, another binary
// (built from an older commit), interleaved in one run so that the ratio
// holds on a shared machine. It also times `stevedore state` (a process that
// starts and prints, the floor of any command).
//
// Then, the second half of the goal: each binary scans a new image per run
// (bench/jobpath's ~1 MB single layer with a file of its own: a new
// digest), whole process, and, in the same run, the same kind of new image
// is indexed by a `stevedore serve` of that binary started once by the
// command (resolve + Clair's POST index_report to a stored terminal
// report): the difference is the start-up a new image's scan pays beyond
// its index-only time (goal: <= 150 ms).
//
//	go run ./bench/startup -runs 9 -baseline before=/tmp/stevedore-before
//
// Postgres comes from DATABASE_URL (a schema of its own, dropped at the end);
// the images are served by an in-process registry.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stevedore-dev/stevedore/bench/internal/benchdb"
	"github.com/stevedore-dev/stevedore/bench/internal/rhelimage"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "startup:", err)
		os.Exit(1)
	}
}

// binary is one stevedore binary under measure.
type binary struct {
	name, path string
	scans      []time.Duration
	states     []time.Duration
	// news are the new-image runs; server the binary's serve process.
	news    []newRun
	newSize int64
	server  *server
}

func run() error {
	runs := flag.Int("runs", 7, "timed scans per binary")
	newRuns := flag.Int("new-runs", -1, "runs of the new-image section (scan of a new image, index-only of another); -1: as -runs, 0: none")
	rpmdb, filler := rhelimage.Flags()
	var others []string
	flag.Func("baseline", "NAME=PATH: another stevedore binary to compare with, e.g. built from an older commit (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want NAME=PATH")
		}
		others = append(others, v)
		return nil
	})
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "stevedore-startup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins := []*binary{{name: "current", path: filepath.Join(dir, "stevedore")}}
	if out, err := exec.Command("go", "build", "-o", bins[0].path, "./cmd/stevedore").CombinedOutput(); err != nil {
		return fmt.Errorf("build ./cmd/stevedore: %v: %s", err, out)
	}
	for _, o := range others {
		name, path, _ := strings.Cut(o, "=")
		bins = append(bins, &binary{name: name, path: path})
	}
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://127.0.0.1:5432/test?sslmode=disable"
	}
	dbURL, drop, err := benchdb.FreshSchema(ctx, base, "bench_startup")
	if err != nil {
		return err
	}
	defer drop()
	ref, stop, err := serveImage(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if err := measureIndexed(bins, dbURL, dir, ref, *runs); err != nil {
		return err
	}
	printIndexed(bins)
	if *newRuns < 0 {
		*newRuns = *runs
	}
	if *newRuns == 0 {
		return nil
	}
	imgs, err := newImageSource(strings.Split(ref, "/")[0], *rpmdb, *filler)
	if err != nil {
		return err
	}
	if err := measureNewImages(ctx, bins, imgs, dbURL, dir, *newRuns); err != nil {
		return err
	}
	reportNew(bins)
	return nil
}

// measureIndexed times runs whole scans of ref, whose report is stored,
// and runs `stevedore state` processes per binary, interleaved.
func measureIndexed(bins []*binary, dbURL, dir, ref string, runs int) error {
	// The first scan indexes the image (and migrates the schema); every
	// later one finds its report current.
	for _, b := range bins {
		if _, err := b.scan(dbURL, dir, ref); err != nil {
			return err
		}
	}
	for range runs {
		for _, b := range bins {
			d, err := b.scan(dbURL, dir, ref)
			if err != nil {
				return err
			}
			b.scans = append(b.scans, d)
			if d, err = timed(exec.Command(b.path, "state")); err != nil {
				return err
			}
			b.states = append(b.states, d)
		}
	}
	return nil
}

// measureNewImages starts each binary's serve and times runs pairs per
// binary (measureNew), interleaved, after one pair each to warm up.
func measureNewImages(ctx context.Context, bins []*binary, imgs *newImages, dbURL, dir string, runs int) error {
	for _, b := range bins {
		var err error
		if b.server, err = b.startServer(dbURL, dir, imgs.registry); err != nil {
			return err
		}
		defer b.server.stop()
	}
	// One pair per binary warms up (the serve's connections, caches).
	for _, b := range bins {
		if err := b.measureNew(ctx, imgs, dbURL, dir); err != nil {
			return err
		}
		b.news = nil
	}
	for range runs {
		for _, b := range bins {
			if err := b.measureNew(ctx, imgs, dbURL, dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// serveImage serves a small Debian-like image and returns its reference.
func serveImage(ctx context.Context) (string, func(), error) {
	srv := httptest.NewServer(devregistry.New().Handler())
	layer, err := devregistry.LayerFromFiles(map[string][]byte{
		"etc/os-release":      []byte("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
		"var/lib/dpkg/status": []byte("Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n"),
	})
	if err != nil {
		srv.Close()
		return "", nil, err
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/bench/startup:1"
	if _, err := devregistry.PushLayers(ctx, ref, layer); err != nil {
		srv.Close()
		return "", nil, fmt.Errorf("push %s: %w", ref, err)
	}
	return ref, srv.Close, nil
}

// scan runs one whole `stevedore scan` process and returns its time.
func (b *binary) scan(dbURL, dir, ref string) (time.Duration, error) {
	return timed(b.scanCmd(dbURL, dir, ref))
}

// scanCmd is the command of b's `stevedore scan` of ref.
func (b *binary) scanCmd(dbURL, dir, ref string) *exec.Cmd {
	return exec.Command(b.path, "scan", "--format", "json", "--database-url", dbURL,
		"--registry-plain-http", strings.Split(ref, "/")[0], "--blob-cache-dir", filepath.Join(dir, "blobs-"+b.name), ref)
}

func timed(cmd *exec.Cmd) (time.Duration, error) {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return d, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func printIndexed(bins []*binary) {
	fmt.Printf("%-10s %12s %12s %14s\n", "binary", "scan (med)", "state (med)", "scan - state")
	for _, b := range bins {
		s, st := median(b.scans), median(b.states)
		fmt.Printf("%-10s %12s %12s %14s\n", b.name, s.Round(time.Millisecond), st.Round(time.Millisecond), (s - st).Round(time.Millisecond))
	}
	for _, b := range bins[1:] {
		fmt.Printf("current ÷ %s, scan of an indexed image: %.2f (without the process floor: %.2f)\n", b.name,
			float64(median(bins[0].scans))/float64(median(b.scans)),
			float64(median(bins[0].scans)-median(bins[0].states))/float64(median(b.scans)-median(b.states)))
	}
}
