// Command bigreport measures the memory of a Stevedore server indexing a
// layer with very many packages and serving its report to several clients
// at once (issue 11: a 4 MB layer of 200,000 node_modules/*/package.json
// took 714 MB RSS to scan, and 8 concurrent GETs of its 63 MB report took
// the server to 3.09 GB).
//
// It builds that layer (streamed: only the ~4 MB compressed blob is kept),
// pushes it as an image to an in-process registry (internal/testing/devregistry), builds
// and starts `stevedore serve` as a child process (embedded JetStream, one
// worker, no blob cache, a fresh Postgres schema of DATABASE_URL), asks it
// to index the image (POST /api/v1/index), waits for the report to be
// terminal, then GETs it from -clients clients at once, and prints the
// child's peak resident memory (VmHWM of /proc/PID/status, Linux) with the
// report's state, size and timings.
//
//	go run ./bench/bigreport                                  # the default caps: the layer fails at the limit
//	go run ./bench/bigreport -args '--layer-max-packages=300000 --report-max-packages=300000'
//
// -args passes flags to `stevedore serve`; -packages sets the layer's size.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/gzip"

	"github.com/stevedore-dev/stevedore/bench/internal/benchdb"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

func main() {
	var (
		packages = flag.Int("packages", 200_000, "node_modules/*/package.json files in the layer")
		clients  = flag.Int("clients", 8, "concurrent GETs of the report")
		dbURL    = benchdb.URLFlag("the server runs in a fresh schema, dropped at the end")
		args     = flag.String("args", "", "more flags for `stevedore serve`, space-separated")
		keep     = flag.Bool("verbose", false, "show the server's log")
	)
	flag.Parse()
	benchdb.ExitOn("bigreport", run(*packages, *clients, *dbURL, strings.Fields(*args), *keep))
}

func run(packages, clients int, dbURL string, extra []string, verbose bool) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "stevedore-bigreport-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	reg, ref, digest, err := pushNpmImage(ctx, packages)
	if err != nil {
		return err
	}
	defer reg.Close()

	schemaURL, drop, err := benchdb.FreshSchema(ctx, dbURL, "bigreport")
	if err != nil {
		return err
	}
	defer drop()

	srv, addr, err := startServe(tmp, schemaURL, extra, verbose)
	if err != nil {
		return err
	}
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}()
	base := "http://" + addr
	if err := waitUp(base); err != nil {
		return err
	}
	idle, _ := peakRSS(srv.Process.Pid)

	start := time.Now()
	body, _ := json.Marshal(map[string]string{"reference": ref})
	resp, err := http.Post(base+"/api/v1/index", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST /api/v1/index: HTTP %d", resp.StatusCode)
	}
	state, reason, err := waitTerminal(ctx, schemaURL, digest)
	if err != nil {
		return err
	}
	indexed := time.Since(start)
	afterIndex, _ := peakRSS(srv.Process.Pid)

	sizes, served, err := getReports(base, digest, clients)
	if err != nil {
		return err
	}
	peak, err := peakRSS(srv.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("report: %s", state)
	if reason != "" {
		fmt.Printf(" (%s)", reason)
	}
	fmt.Printf(", %.1f MB, indexed in %s, %d concurrent GETs in %s\n", float64(sizes[0])/1e6, indexed.Round(time.Millisecond), clients, served.Round(time.Millisecond))
	fmt.Printf("server peak RSS (VmHWM): %d MB idle, %d MB after indexing, %d MB after the GETs (goal: under 300 MB)\n", idle>>20, afterIndex>>20, peak>>20)
	return nil
}

// startServe builds ./cmd/stevedore into tmp and starts "stevedore serve"
// with one worker on schemaURL, with the extra arguments, on a free local
// address it returns; verbose passes its log on.
func startServe(tmp, schemaURL string, extra []string, verbose bool) (*exec.Cmd, string, error) {
	bin := filepath.Join(tmp, "stevedore")
	build := exec.Command("go", "build", "-o", bin, "./cmd/stevedore")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, "", fmt.Errorf("building ./cmd/stevedore (run from the repository root): %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	cmdArgs := append([]string{"serve", "--addr", addr, "--database-url", schemaURL, "--workers", "1",
		"--blob-cache-size", "0", "--nats-store-dir", filepath.Join(tmp, "nats")}, extra...)
	srv := exec.Command(bin, cmdArgs...)
	srv.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none")
	if verbose {
		srv.Stderr = os.Stderr
	}
	if err := srv.Start(); err != nil {
		return nil, "", err
	}
	return srv, addr, nil
}

// pushNpmImage pushes an image of one npm layer of packages packages to a
// registry it starts, and returns the registry (to close), the image's
// reference and its manifest's digest.
func pushNpmImage(ctx context.Context, packages int) (*devregistry.Server, string, string, error) {
	start := time.Now()
	blob, err := npmLayer(packages)
	if err != nil {
		return nil, "", "", err
	}
	fmt.Printf("layer: %d package.json files, %.1f MB gzip (built in %s)\n", packages, float64(len(blob))/1e6, time.Since(start).Round(time.Millisecond))
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil })
	if err != nil {
		return nil, "", "", err
	}
	reg, err := devregistry.New().Start(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, "", "", err
	}
	ref := reg.Ref("bigreport:1")
	if _, err := devregistry.PushLayers(ctx, ref, layer); err != nil {
		reg.Close()
		return nil, "", "", err
	}
	imgs, err := resolve.New().Resolve(ctx, ref, "")
	if err != nil {
		reg.Close()
		return nil, "", "", err
	}
	digest := string(imgs[0].Manifest.Hash)
	return reg, ref, digest, nil
}

// getReports GETs the report of digest from clients clients at once, and
// returns the bytes each read and the time they took together.
func getReports(base, digest string, clients int) ([]int64, time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	sizes := make([]int64, clients)
	errs := make([]error, clients)
	for i := range clients {
		wg.Go(func() {
			resp, err := http.Get(base + "/indexer/api/v1/index_report/" + digest)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			sizes[i], errs[i] = io.Copy(io.Discard, resp.Body)
			if errs[i] == nil && resp.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("GET report: HTTP %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	served := time.Since(start)
	return sizes, served, errors.Join(errs...)
}

// npmLayer is a gzip tar of n node_modules/pN/package.json files.
func npmLayer(n int) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for i := range n {
		body := fmt.Sprintf(`{"name":"p%d","version":"1.0.%d","description":"package number %d"}`, i, i%100, i)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("app/node_modules/p%d/package.json", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// peakRSS is VmHWM of process pid, in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS (Linux only): %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitUp(base string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the server did not answer /healthz in time (try -verbose)")
}

// waitTerminal polls the report's state in Postgres (not through the API:
// the poll must not add to the server's memory).
func waitTerminal(ctx context.Context, dbURL, digest string) (state, reason string, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", "", err
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		err := conn.QueryRow(ctx, `SELECT state, error FROM index_report WHERE manifest_hash = $1`, digest).Scan(&state, &reason)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return "", "", err
		case state == "IndexFinished" || state == "IndexError" || state == "IndexPartial":
			return state, reason, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", "", errors.New("the report was not terminal in time")
}
