// Package cli indexes image references and prints their reports: against a
// running server, or with the whole pipeline in this process (embedded
// JetStream, the same dispatcher, HTTP API and worker code, Postgres).
package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/client"
	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/cli/summary"
	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/reportwait"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/sbom"
	"github.com/stevedore-dev/stevedore/report"
)

// Options configures Run.
type Options struct {
	// Server is a running dispatcher's base URL; empty runs the pipeline
	// in process with Node.
	Server string
	Node   app.Config
	// Platform selects one platform of an image index ("linux/amd64").
	Platform string
	// Format names the output format, one of FormatNames (default
	// "table").
	Format string
	// Top bounds the packages listed in the table (0: all).
	Top int
	// Timeout bounds the wait for each report (default DefaultTimeout).
	Timeout time.Duration
	Logger  *slog.Logger
	// Progress, when it is enabled (a terminal), shows what is fetched and
	// scanned while Run waits.
	Progress *Progress

	// stored, set for the in-process node, returns once the report of a
	// manifest is stored and terminal (a notification of the store), so
	// that the wait reads it then instead of at its next poll.
	stored func(ctx context.Context, d report.Digest) error
}

// DefaultTimeout bounds the wait for each report of a scan.
const DefaultTimeout = 30 * time.Minute

// ErrIndexFailed is returned when a report ended in IndexError.
var ErrIndexFailed = errors.New("indexing failed")

// Image is one indexed manifest of a scanned reference.
type Image struct {
	// Ref is the reference as given; Platform the manifest's platform in
	// an image index ("" for a single manifest).
	Ref, Platform string
	Report        *report.Report
}

// Title names the image for people: the reference and its platform.
func (i Image) Title() string {
	if i.Platform != "" {
		return i.Ref + " (" + i.Platform + ")"
	}
	return i.Ref
}

// Format writes the reports of the scanned images in one output format.
type Format func(w io.Writer, images []Image) error

// formats are Run's output formats by --format name; an SBOM format is one
// more entry.
func formats(o Options) map[string]Format {
	return map[string]Format{
		"table":                  func(w io.Writer, images []Image) error { return writeTable(w, images, o.Top) },
		"json":                   writeJSON,
		sbom.FormatSPDXJSON:      writeSBOM(sbom.FormatSPDXJSON),
		sbom.FormatCycloneDXJSON: writeSBOM(sbom.FormatCycloneDXJSON),
	}
}

// writeSBOM writes the SBOM of one image in format. An SBOM describes one
// image: a reference naming several platforms needs --platform.
func writeSBOM(format string) Format {
	return func(w io.Writer, images []Image) error {
		if len(images) != 1 {
			return fmt.Errorf("--format %s: the reference names %d platform images and an SBOM describes one: choose it with --platform", format, len(images))
		}
		img := images[0]
		return sbom.Encode(context.Background(), w, img.Report, format, sbom.Options{Name: img.Title()})
	}
}

// FormatNames are the names Options.Format takes, sorted.
func FormatNames() []string { return slices.Sorted(maps.Keys(formats(Options{}))) }

// writeTable writes a summary and package table per image.
func writeTable(w io.Writer, images []Image, top int) error {
	for i, img := range images {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := summary.Write(w, img.Title(), img.Report, top); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON writes the native report (IndexReport with Stevedore's
// fields): one object for one image, an array for several.
func writeJSON(w io.Writer, images []Image) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(images) == 1 {
		return enc.Encode(images[0].Report)
	}
	reports := make([]*report.Report, len(images))
	for i, img := range images {
		reports[i] = img.Report
	}
	return enc.Encode(reports)
}

// Run indexes refs, waits for their reports and writes them to out in
// o.Format. A report that ended in IndexError is written too, and its
// reason returned (wrapping ErrIndexFailed).
func Run(ctx context.Context, o Options, refs []string, out io.Writer) error {
	format, err := prepare(&o, refs)
	if err != nil {
		return err
	}
	base := o.Server
	var hc *http.Client
	if base == "" {
		if o.Node.Resolver == nil {
			// The references are resolved while Postgres connects.
			res := newReplayResolver(resolve.New(resolve.WithClient(registry.New(o.Node.Registries,
				registry.WithLogger(o.Logger), registry.WithMeterProvider(o.Node.MeterProvider)))))
			for _, ref := range refs {
				res.Prefetch(ctx, ref, o.Platform)
			}
			o.Node.Resolver = res
		}
		// One pool, its schema migrated once, for the lookup and the node.
		if o.Node.Pool == nil {
			pool, err := postgres.Connect(ctx, o.Node.DatabaseURL)
			if err != nil {
				return err
			}
			defer pool.Close()
			o.Node.Pool = pool
		}
		images, ok := lookupCurrent(ctx, o, refs)
		if ok {
			// Every report is stored and current: no node to start.
			if err := format(out, images); err != nil {
				return fmt.Errorf("scan: write %s: %w", o.Format, err)
			}
			return nil
		}
		warmPool(ctx, o.Node.Pool)
		if o.Progress.Enabled() {
			wrap := o.Node.WrapFetcher
			o.Node.WrapFetcher = func(f indexer.Fetcher) indexer.Fetcher {
				if wrap != nil {
					f = wrap(f)
				}
				return o.Progress.Wrap(f)
			}
		}
		l, err := startLocal(ctx, o)
		if err != nil {
			return err
		}
		defer l.stop()
		base, hc, o.stored = l.url, l.client, l.stored
	}
	images, failed, err := indexAll(ctx, o, client.New(base, hc), refs)
	if err != nil {
		return err
	}
	if err := format(out, images); err != nil {
		return fmt.Errorf("scan: write %s: %w", o.Format, err)
	}
	return failed
}

// prepare checks refs and o's format and fills o's defaults; it returns the
// writer of the format.
func prepare(o *Options, refs []string) (Format, error) {
	if len(refs) == 0 {
		return nil, errors.New("scan: no image reference given")
	}
	if o.Format == "" {
		o.Format = "table"
	}
	format, ok := formats(*o)[o.Format]
	if !ok {
		return nil, fmt.Errorf("scan: format %q: want one of %s", o.Format, strings.Join(FormatNames(), ", "))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return format, nil
}

// indexAll asks c to index each of refs and waits for every platform's
// report, showing progress meanwhile; the status line is cleared when it
// returns. failed joins the reasons of the reports that ended in IndexError.
func indexAll(ctx context.Context, o Options, c *client.Client, refs []string) (images []Image, failed, err error) {
	o.Progress.SetLabel(refs[0])
	pctx, cancelProgress := context.WithCancel(ctx)
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		o.Progress.Run(pctx, 100*time.Millisecond)
	}()
	defer func() {
		cancelProgress()
		<-progressDone
	}()
	for _, ref := range refs {
		o.Progress.SetLabel(ref)
		resp, err := c.IndexReference(ctx, ref, o.Platform)
		if err != nil {
			return nil, nil, fmt.Errorf("scan %s: %w", ref, err)
		}
		for _, m := range resp.Manifests {
			o.Logger.Info("waiting for report", "reference", ref, "platform", m.Platform, "digest", m.Digest, "state", m.State)
			wctx, cancel := context.WithTimeout(ctx, o.Timeout)
			r, err := c.WaitWake(wctx, m.Digest, 250*time.Millisecond, o.wake(wctx, m.Digest))
			cancel()
			if err != nil {
				return nil, nil, fmt.Errorf("scan %s: %w", ref, err)
			}
			if r.State == report.StateIndexError {
				failed = errors.Join(failed, fmt.Errorf("%s (%s): %w: %s", ref, m.Digest, ErrIndexFailed, r.Err))
			}
			images = append(images, Image{Ref: ref, Platform: m.Platform, Report: r})
		}
	}
	return images, failed, nil
}

// wake is closed once o.stored says the report of d is stored and terminal
// (never without o.stored, or when ctx ends first): the wait then reads it
// at once; its polls remain the fallback.
func (o Options) wake(ctx context.Context, d report.Digest) <-chan struct{} {
	if o.stored == nil {
		return nil
	}
	ch := make(chan struct{})
	go func() {
		if o.stored(ctx, d) == nil {
			close(ch)
		}
	}()
	return ch
}

// lookupCurrent returns the images of refs when each one's report is
// stored and current (app.Lookup): the answer a node would give at once,
// without starting one (its queue above all). Anything else (a report to
// make, an error) says no: the node is started and answers (errors included)
// as before.
func lookupCurrent(ctx context.Context, o Options, refs []string) ([]Image, bool) {
	found, ok, err := app.Lookup(ctx, o.Node, refs, o.Platform)
	if err != nil {
		o.Logger.Debug("stored reports not looked up; starting the node", "error", err)
		return nil, false
	}
	if !ok {
		return nil, false
	}
	images := make([]Image, len(found))
	for i, f := range found {
		o.Logger.Info("stored report is current", "reference", f.Ref, "platform", f.Image.Platform, "digest", f.Image.Digest, "state", f.Report.State)
		images[i] = Image{Ref: f.Ref, Platform: f.Image.Platform, Report: f.Report}
	}
	return images, true
}

// warmPool opens, in the background, the connections pool has room for: the
// node's parts ask for them at once (the dispatcher, the worker's lease and
// writes, the API), and each is a Postgres backend's start, paid here while
// the node starts instead of on the first job's path. Each of its
// acquisitions is released at once: one that finds an idle connection
// (while the others open theirs) does not keep it from the node.
func warmPool(ctx context.Context, pool *pgxpool.Pool) {
	for range pool.Config().MaxConns - pool.Stat().AcquiredConns() {
		go func() {
			if c, err := pool.Acquire(ctx); err == nil {
				c.Release()
			}
		}()
	}
}

// localIssuer is the iss claim of the tokens Run signs for its in-process
// API.
const localIssuer = "stevedore-scan"

// local is the in-process node of a scan.
type local struct {
	// stop stops the node; url is its API's base URL, client the client
	// to call it with.
	stop   func()
	url    string
	client *http.Client
	// stored returns once the report of d is stored and terminal, made by
	// the node's scanner set (the test of client.Wait), as the store
	// notifies it.
	stored func(ctx context.Context, d report.Digest) error
}

// startLocal runs a node with the dispatcher role, workers and an embedded
// JetStream server, its API on a loopback port. Unless o.Node sets a key,
// the API takes only tokens signed with a random key of this run, which the
// returned client signs: other local users cannot use it while it runs.
// o.Node.Pool is open (Run opens it), and outlives the node.
func startLocal(ctx context.Context, o Options) (*local, error) {
	cfg := o.Node
	// The API without the background work: the sweeps and the updater
	// serve a fleet over time, not the images of this run (whose stale or
	// missing reports the API itself queues).
	cfg.Dispatcher, cfg.NoMaintenance = true, true
	if cfg.Workers == 0 {
		cfg.Workers = app.DefaultWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = o.Logger
	}
	// The wait's listening connection opens while the node starts.
	stored := storedWaiter(cfg.Pool, app.State(cfg.Scanners), o.Logger)
	var hc *http.Client
	if !cfg.Auth.Enabled() {
		key := make([]byte, 32)
		rand.Read(key)
		cfg.Auth.Key, cfg.Auth.Issuers = key, []string{localIssuer}
		hc = &http.Client{Timeout: 2 * time.Minute, Transport: &signer{key: key, next: http.DefaultTransport}}
	}
	n, err := app.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("scan: listen: %w", err)
	}
	srv := app.NewHTTPServer(n.Handler, cfg.HTTP)
	go srv.Serve(ln)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(wctx); err != nil {
			o.Logger.Error("workers stopped", "error", err)
		}
	}()
	return &local{stop: func() {
		cancel()
		<-done
		srv.Close()
		n.Close()
	}, url: "http://" + ln.Addr().String(), client: hc, stored: stored}, nil
}

// storedWaiter returns a wait for the stored terminal reports of pool's
// store made by the scanner set of state, woken by the store's
// notifications (reportwait): its listening connection is opened now, while
// the node starts, and closed soon after the last wait.
func storedWaiter(pool *pgxpool.Pool, state string, log *slog.Logger) func(context.Context, report.Digest) error {
	st := postgres.New(pool)
	hub := reportwait.New(pool, func(ctx context.Context, d report.Digest) (*report.Report, bool, error) {
		r, err := st.Report(ctx, d)
		if errors.Is(err, postgres.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		return r, client.Done(r, state), nil
	}, reportwait.Options{Logger: log, Linger: storedLinger})
	hub.Keep()
	return func(ctx context.Context, d report.Digest) error {
		_, err := hub.Wait(ctx, d)
		return err
	}
}

// storedLinger is how long the scan's listening connection outlives its last
// wait: the manifests of one run are waited for one after the other.
const storedLinger = time.Second

// signer adds a fresh short-lived HS256 token to each request.
type signer struct {
	key  []byte
	next http.RoundTripper
}

func (s *signer) RoundTrip(r *http.Request) (*http.Response, error) {
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: localIssuer, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
	}).SignedString(s.key)
	if err != nil {
		return nil, fmt.Errorf("scan: sign a token for the in-process API: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return s.next.RoundTrip(r)
}
