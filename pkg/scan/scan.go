// Package scan indexes image references and prints their reports: against a
// running server, or with the whole pipeline in this process (embedded
// JetStream, the same dispatcher, HTTP API and worker code, Postgres).
package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/stevedore-dev/stevedore/pkg/client"
	"github.com/stevedore-dev/stevedore/pkg/index"
	"github.com/stevedore-dev/stevedore/pkg/node"
	"github.com/stevedore-dev/stevedore/pkg/summary"
)

// Options configures Run.
type Options struct {
	// Server is a running dispatcher's base URL; empty runs the pipeline
	// in process with Node.
	Server string
	Node   node.Config
	// Platform selects one platform of an image index ("linux/amd64").
	Platform string
	// JSON prints the IndexReports instead of a summary.
	JSON bool
	// Top bounds the packages listed in the summary (0: all).
	Top int
	// Timeout bounds the wait for each report.
	Timeout time.Duration
	Logger  *slog.Logger
}

// ErrIndexFailed is returned when a report ended in IndexError.
var ErrIndexFailed = errors.New("indexing failed")

// Run indexes refs, waits for their reports and writes them to out.
func Run(ctx context.Context, o Options, refs []string, out io.Writer) error {
	if len(refs) == 0 {
		return errors.New("scan: no image reference given")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Minute
	}
	base := o.Server
	if base == "" {
		stop, url, err := startLocal(ctx, o)
		if err != nil {
			return err
		}
		defer stop()
		base = url
	}
	c := client.New(base, nil)
	var reports []*index.Report
	var failed error
	for _, ref := range refs {
		resp, err := c.IndexReference(ctx, ref, o.Platform)
		if err != nil {
			return fmt.Errorf("scan %s: %w", ref, err)
		}
		for _, m := range resp.Manifests {
			o.Logger.Info("waiting for report", "reference", ref, "platform", m.Platform, "digest", m.Digest, "state", m.State)
			wctx, cancel := context.WithTimeout(ctx, o.Timeout)
			r, err := c.Wait(wctx, m.Digest, 250*time.Millisecond)
			cancel()
			if err != nil {
				return fmt.Errorf("scan %s: %w", ref, err)
			}
			if r.State == index.StateIndexError {
				failed = errors.Join(failed, fmt.Errorf("%s (%s): %w: %s", ref, m.Digest, ErrIndexFailed, r.Err))
			}
			reports = append(reports, r)
			if !o.JSON {
				title := ref
				if m.Platform != "" {
					title += " (" + m.Platform + ")"
				}
				if err := summary.Write(out, title, r, o.Top); err != nil {
					return err
				}
				fmt.Fprintln(out)
			}
		}
	}
	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		var v any = reports
		if len(reports) == 1 {
			v = reports[0]
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return failed
}

// startLocal runs a node with the dispatcher role, workers and an embedded
// JetStream server, its API on a loopback port.
func startLocal(ctx context.Context, o Options) (stop func(), url string, err error) {
	cfg := o.Node
	cfg.Dispatcher = true
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = o.Logger
	}
	n, err := node.Start(ctx, cfg)
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.Close()
		return nil, "", fmt.Errorf("scan: listen: %w", err)
	}
	srv := node.NewHTTPServer(n.Handler, cfg.HTTP)
	go srv.Serve(ln)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(wctx); err != nil {
			o.Logger.Error("workers stopped", "error", err)
		}
	}()
	return func() {
		cancel()
		<-done
		srv.Close()
		n.Close()
	}, "http://" + ln.Addr().String(), nil
}
