package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stevedore-dev/stevedore/bench/internal/rhelimage"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

// newImages pushes images never seen before to a registry
// (rhelimage's, as bench/jobpath's).
type newImages struct {
	registry string // host:port
	src      *rhelimage.Source
	n        atomic.Int64
}

func newImageSource(registry, rpmdbPath string, filler int) (*newImages, error) {
	src, err := rhelimage.NewSource(rpmdbPath, filler)
	if err != nil {
		return nil, err
	}
	return &newImages{registry: registry, src: src}, nil
}

// push pushes the next new image and returns its reference and size.
func (s *newImages) push(ctx context.Context) (ref string, size int64, err error) {
	i := s.n.Add(1)
	l, err := s.src.Layer(i)
	if err != nil {
		return "", 0, err
	}
	if size, err = l.Size(); err != nil {
		return "", 0, err
	}
	ref = fmt.Sprintf("%s/bench/new%04d:1", s.registry, i)
	if _, err := devregistry.PushLayers(ctx, ref, l); err != nil {
		return "", 0, fmt.Errorf("push %s: %w", ref, err)
	}
	return ref, size, nil
}

// server is a `stevedore serve` process of one binary, started once, on
// which the index-only time of new images is measured.
type server struct {
	cmd  *exec.Cmd
	base string
	out  *bytes.Buffer
}

// startServer starts b's `stevedore serve` on a free loopback port and
// waits for its API.
func (b *binary) startServer(dbURL, dir, registry string) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	out := &bytes.Buffer{}
	cmd := exec.Command(b.path, "serve", "--addr", addr, "--database-url", dbURL,
		"--nats-store-dir", filepath.Join(dir, "serve-nats-"+b.name), "--registry-plain-http", registry,
		"--blob-cache-dir", filepath.Join(dir, "serve-blobs-"+b.name))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", b.name, err)
	}
	s := &server{cmd: cmd, base: "http://" + addr, out: out}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s serve: API not up after 60s: %s", b.name, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
}

// indexOnly is the index-only time of ref on s: the manifest resolved
// (as scan does) and Clair's POST index_report, which answers once the
// report is terminal and stored.
func (s *server) indexOnly(ctx context.Context, ref string) (time.Duration, error) {
	start := time.Now()
	ms, err := resolve.New().Resolve(ctx, ref, "")
	if err != nil {
		return 0, fmt.Errorf("resolve %s: %w", ref, err)
	}
	body, err := json.Marshal(ms[0].Manifest)
	if err != nil {
		return 0, err
	}
	resp, err := http.Post(s.base+"/indexer/api/v1/index_report", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r report.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("index %s: HTTP %d: %w", ref, resp.StatusCode, err)
	}
	d := time.Since(start)
	if resp.StatusCode != http.StatusCreated || r.State != report.StateIndexFinished || len(r.Packages) == 0 {
		return 0, fmt.Errorf("index %s: HTTP %d, state %s, %d packages", ref, resp.StatusCode, r.State, len(r.Packages))
	}
	return d, nil
}

// newRun is one run's pair of a binary: the whole `stevedore scan` of a new
// image and the index-only time of another new image on its server.
type newRun struct{ scan, index time.Duration }

// measureNew runs one pair for b: scan of a new image, index-only of
// another.
func (b *binary) measureNew(ctx context.Context, imgs *newImages, dbURL, dir string) error {
	ref, size, err := imgs.push(ctx)
	if err != nil {
		return err
	}
	b.newSize = size
	var out bytes.Buffer
	cmd := b.scanCmd(dbURL, dir, ref)
	cmd.Stdout = &out
	scan, err := timed(cmd)
	if err != nil {
		return err
	}
	var r report.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.State != report.StateIndexFinished || len(r.Packages) == 0 {
		return fmt.Errorf("%s scan %s: state %s, %d packages (%v)", b.name, ref, r.State, len(r.Packages), err)
	}
	if ref, _, err = imgs.push(ctx); err != nil {
		return err
	}
	index, err := b.server.indexOnly(ctx, ref)
	if err != nil {
		return err
	}
	b.news = append(b.news, newRun{scan: scan, index: index})
	return nil
}

// reportNew prints the new-image section: scan whole process, index-only
// time and their difference, per binary, beside the goal.
func reportNew(bins []*binary) {
	fmt.Printf("\nnew image (1 layer, %d bytes): whole `stevedore scan` process, and index-only on a running `stevedore serve`\n"+
		"(resolve + Clair's POST index_report to a stored terminal report); goal: scan - index-only <= 150 ms\n", bins[0].newSize)
	fmt.Printf("%-10s %12s %12s %22s  %s\n", "binary", "scan (med)", "index (med)", "scan - index (med)", "per run (ms)")
	extra := map[*binary]time.Duration{}
	for _, b := range bins {
		scans, idx, diffs := make([]time.Duration, len(b.news)), make([]time.Duration, len(b.news)), make([]time.Duration, len(b.news))
		var per []string
		for i, r := range b.news {
			scans[i], idx[i], diffs[i] = r.scan, r.index, r.scan-r.index
			per = append(per, fmt.Sprint(diffs[i].Milliseconds()))
		}
		extra[b] = median(diffs)
		fmt.Printf("%-10s %12s %12s %22s  %s\n", b.name, median(scans).Round(time.Millisecond), median(idx).Round(time.Millisecond),
			extra[b].Round(time.Millisecond), strings.Join(per, " "))
	}
	for _, b := range bins[1:] {
		fmt.Printf("current ÷ %s, scan of a new image: %.2f; its start-up beyond index-only: %.2f\n", b.name,
			pairRatio(bins[0].news, b.news, func(r newRun) time.Duration { return r.scan }),
			float64(extra[bins[0]])/float64(extra[b]))
	}
}

// pairRatio is the median over runs of a's figure ÷ b's in the same run.
func pairRatio(a, b []newRun, f func(newRun) time.Duration) float64 {
	rs := make([]time.Duration, 0, len(a))
	for i := range min(len(a), len(b)) {
		// Scaled to keep the ratio's precision in a Duration.
		rs = append(rs, time.Duration(float64(f(a[i]))/float64(f(b[i]))*1e6))
	}
	return float64(median(rs)) / 1e6
}
