// Package indexer runs the indexing of one manifest through its states:
//
//	CheckManifest -> FetchLayers -> ScanLayers -> Coalesce -> IndexManifest -> IndexFinished
//
// with IndexError as the failure state, and IndexPartial when the results
// are usable but an enricher could not complete them (enrichment data
// missing, stale or unusable): the report is stored with the reasons and the
// time of its next retry. The report is stored at each
// transition, under the worker's lease fence, so a client polling the API sees
// progress and a worker that lost its lease cannot write.
//
// Layers are content-addressed: a layer whose results for every current
// scanner are already stored (by any manifest, by any worker) is not fetched
// again. A layer that is needed is fetched and read in one streaming pass that
// verifies its digest and hands each scanner only the files it asked for.
package indexer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/indexer/coalesce"
	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/layer/claim"
	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// ErrScan marks a scanner that could not read a file it asked for (a corrupt
// package database): the report fails with the scanner's reason.
var ErrScan = errors.New("scanner failed")

// Permanent reports whether err will recur on retry with the same input: a
// corrupt or mismatched layer, a blob that does not exist, a scanner that
// cannot parse a file, data that Postgres refuses (postgres.Permanent: an
// SQLSTATE class such as 22, data exception). Other errors (network,
// registry 5xx, a database that is down or restarting) are worth retrying.
func Permanent(err error) bool {
	return errors.Is(err, layer.ErrBadLayer) || errors.Is(err, layer.ErrLimit) || errors.Is(err, fetch.ErrPermanent) || errors.Is(err, ErrScan) ||
		postgres.Permanent(err)
}

// Defaults of Config's package bounds.
const (
	DefaultMaxLayerPackages  = 50_000
	DefaultMaxReportPackages = 50_000
)

// DefaultProgressAfter is the Config.ProgressAfter of a node's workers: a
// client polling index_state sees the states of a run that lasts longer.
const DefaultProgressAfter = 100 * time.Millisecond

// Fetcher opens layer blobs (internal/layer/fetch in production).
type Fetcher interface {
	Open(ctx context.Context, l *report.Layer) (io.ReadCloser, error)
}

// Config configures an Indexer.
type Config struct {
	// Store keeps reports and layer results (*postgres.Store in
	// production).
	Store    Store
	Fetcher  Fetcher
	Scanners []scanner.Scanner
	// LayerOptions bound what the layer reader keeps. Its
	// MaxFilesPerScanner is MaxLayerPackages when not set.
	LayerOptions layer.Options
	// MaxLayerPackages bounds the packages one scanner may find in one
	// layer (default DefaultMaxLayerPackages), MaxReportPackages those of
	// one report (default DefaultMaxReportPackages). Past either, the
	// report is IndexError with the limit in the reason (an error
	// wrapping layer.ErrLimit: permanent).
	MaxLayerPackages, MaxReportPackages int
	// Enrichers complete the coalesced report from data loaded ahead of
	// time (internal/enrich), in order.
	Enrichers []enrich.Enricher
	// Retry is the backoff of partial reports' retries (default
	// queue.DefaultRetryPolicy).
	Retry queue.RetryPolicy
	// Parallel is how many layers of one manifest are fetched at once
	// (default 2).
	Parallel int
	// Claims, when set, makes workers that need the same layer at the
	// same moment fetch it once (see layerclaim.go).
	Claims *claim.Claims
	// ProgressAfter, when positive, stores a run's intermediate states
	// (CheckManifest to IndexManifest) only once the run has lasted that
	// long, saving a transaction each on short runs; zero stores each
	// state as it is entered.
	ProgressAfter time.Duration
	// MeterProvider receives stevedore.indexer.layers_skipped (default:
	// the global provider).
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	Logger         *slog.Logger
}

// Indexer indexes manifests with one scanner set.
type Indexer struct {
	cfg    Config
	infos  []scanner.Info
	ids    []int64
	state  string
	tracer trace.Tracer
	log    *slog.Logger
	// skipped counts layers not fetched because their results are stored.
	skipped metric.Int64Counter
}

// New registers the scanners in the store and returns an Indexer.
func New(ctx context.Context, cfg Config) (*Indexer, error) {
	if cfg.Store == nil || cfg.Fetcher == nil || len(cfg.Scanners) == 0 {
		return nil, errors.New("new indexer: store, fetcher and at least one scanner are required")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.MaxLayerPackages <= 0 {
		cfg.MaxLayerPackages = DefaultMaxLayerPackages
	}
	if cfg.MaxReportPackages <= 0 {
		cfg.MaxReportPackages = DefaultMaxReportPackages
	}
	if cfg.LayerOptions.MaxFilesPerScanner <= 0 {
		// A package scanner finds about a package per file (a manifest
		// each) or many in one (a database): its files are bounded by
		// the same number.
		cfg.LayerOptions.MaxFilesPerScanner = cfg.MaxLayerPackages
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Retry.Base <= 0 {
		cfg.Retry = queue.DefaultRetryPolicy()
	}
	ix := &Indexer{cfg: cfg, state: State(cfg.Scanners, cfg.Enrichers), log: cfg.Logger,
		tracer: cfg.TracerProvider.Tracer("github.com/stevedore-dev/stevedore/internal/indexer")}
	ix.cfg.Store = tracedStore{s: cfg.Store, tracer: ix.tracer}
	for _, s := range cfg.Scanners {
		ix.infos = append(ix.infos, s.Info())
	}
	ids, err := ix.cfg.Store.RegisterScanners(ctx, ix.infos)
	if err != nil {
		return nil, fmt.Errorf("new indexer: %w", err)
	}
	ix.ids = ids
	ix.initMetrics()
	return ix, nil
}

// State is the scanner-set state of this indexer's scanners and enrichers.
func (ix *Indexer) State() string { return ix.state }

// State is the scanner-set state of a set of scanners and enrichers, and of
// the coalescer's rules (coalesce.Version): a report made under another state
// is stale.
func State(ss []scanner.Scanner, es []enrich.Enricher) string {
	infos := []scanner.Info{{Name: "coalesce", Version: coalesce.Version, Kind: "coalescer"}}
	for _, s := range ss {
		infos = append(infos, s.Info())
	}
	for _, e := range es {
		infos = append(infos, e.Info())
	}
	return scanner.StateOf(infos)
}

// Run is one run of a job.
type Run struct {
	// Attempt counts runs of the manifest for its request (1 first).
	Attempt int
	// Job is the encoded job, stored with the report so that it can be
	// run again (retries, re-index sweeps).
	Job []byte
	// Force skips the early end of CheckManifest for a current report.
	Force bool
}

// Index runs manifest m through the states under fence f and returns the
// final report. When a current report exists it is returned without work. On
// error the report is left in the state it reached; the caller decides
// between a retry and Fail (see Permanent).
func (ix *Indexer) Index(ctx context.Context, f postgres.Fence, m *report.Manifest, run Run) (*report.Report, error) {
	attempt := max(run.Attempt, 1)
	ctx, span := ix.tracer.Start(ctx, "index manifest", trace.WithAttributes(
		attribute.String("stevedore.digest", string(m.Hash)),
		attribute.Int("stevedore.layers", len(m.Layers)),
		attribute.Int("stevedore.attempt", attempt)))
	defer span.End()
	r, err := ix.index(ctx, f, m, attempt, run)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return r, err
}

// enrich runs the enrichers on r, records their gaps as partial reasons, and
// returns the names of the data sets waited for.
func (ix *Indexer) enrich(ctx context.Context, r *report.Report) ([]string, error) {
	var waiting []string
	for _, e := range ix.cfg.Enrichers {
		info := e.Info()
		ectx, span := ix.tracer.Start(ctx, "enrich "+info.Name)
		gaps, err := e.Enrich(ectx, r)
		span.End()
		if err != nil {
			return nil, fmt.Errorf("enricher %s: %w", info.Name, err)
		}
		for _, g := range gaps {
			r.Partial = append(r.Partial, report.PartialReason{Scanner: info.Name, Reason: g.Reason})
			if !slices.Contains(waiting, g.Data) {
				waiting = append(waiting, g.Data)
			}
		}
	}
	return waiting, nil
}

// Fail stores an IndexError report for manifest d with the reason.
func (ix *Indexer) Fail(ctx context.Context, f postgres.Fence, d report.Digest, attempt int, reason error) error {
	r := report.NewReport(d, report.StateIndexError)
	r.ScannerState = ix.state
	r.Err = reason.Error()
	r.Attempt = attempt
	return ix.cfg.Store.WriteReport(ctx, f, r)
}

// transition stores the report of intermediate state s (see progress).
func (ix *Indexer) transition(ctx context.Context, f postgres.Fence, d report.Digest, s report.State, attempt int) error {
	return ix.cfg.Store.WriteReport(ctx, f, ix.report(d, s, attempt))
}

// report is the report of manifest d in intermediate state s.
func (ix *Indexer) report(d report.Digest, s report.State, attempt int) *report.Report {
	r := report.NewReport(d, s)
	r.ScannerState = ix.state
	r.Attempt = attempt
	return r
}

// scanLayers fetches and scans each layer that lacks results, a bounded
// number at a time. A layer that appears twice in the manifest is read once.
func (ix *Indexer) scanLayers(ctx context.Context, f postgres.Fence, m *report.Manifest, missing map[report.Digest][]int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(ix.cfg.Parallel)
	seen := map[report.Digest]bool{}
	for _, l := range m.Layers {
		need, ok := missing[l.Hash]
		if !ok || seen[l.Hash] {
			continue
		}
		seen[l.Hash] = true
		g.Go(func() error { return ix.claimAndScan(ctx, f, l, need) })
	}
	return g.Wait()
}

func (ix *Indexer) scanLayer(ctx context.Context, f postgres.Fence, l *report.Layer, need []int) (err error) {
	ctx, span := ix.tracer.Start(ctx, "fetch and scan layer", trace.WithAttributes(
		attribute.String("stevedore.layer", string(l.Hash)), attribute.Int("stevedore.scanners", len(need))))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	start := time.Now()
	ss := make([]scanner.Scanner, len(need))
	for i, n := range need {
		ss[i] = ix.cfg.Scanners[n]
	}
	contents, err := ix.readLayer(ctx, l, ss)
	if err != nil {
		return err
	}
	defer contents.Close()
	for _, w := range contents.Warnings {
		ix.log.WarnContext(ctx, "layer warning", "layer", l.Hash, "warning", w)
	}
	span.SetAttributes(attribute.Int64("stevedore.layer.compressed_bytes", contents.CompressedBytes),
		attribute.Int64("stevedore.layer.uncompressed_bytes", contents.UncompressedBytes))
	lr := &postgres.LayerResults{Digest: l.Hash, Whiteouts: contents.Whiteouts, OpaqueDirs: contents.OpaqueDirs}
	for i, s := range ss {
		info := s.Info()
		_, sspan := ix.tracer.Start(ctx, "scan "+info.Name, trace.WithAttributes(
			attribute.String("stevedore.scanner", info.Name), attribute.String("stevedore.scanner.version", info.Version),
			attribute.Int("stevedore.files", len(contents.Files[i]))))
		res, err := s.Scan(ctx, contents.Files[i])
		sspan.End()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("layer %s: scanner %s %s: %w: %w", l.Hash, info.Name, info.Version, ErrScan, err)
		}
		if res != nil && len(res.Packages) > ix.cfg.MaxLayerPackages {
			return fmt.Errorf("layer %s: scanner %s %s: %w: %d packages, more than the limit of %d per layer (--layer-max-packages)",
				l.Hash, info.Name, info.Version, layer.ErrLimit, len(res.Packages), ix.cfg.MaxLayerPackages)
		}
		if res != nil {
			for _, w := range res.Warnings {
				ix.log.WarnContext(ctx, "scanner warning", "layer", l.Hash, "scanner", info.Name, "warning", w)
			}
		}
		files := make([]string, len(contents.Files[i]))
		for k, f := range contents.Files[i] {
			files[k] = f.Path()
		}
		lr.Scans = append(lr.Scans, postgres.ScanResult{ScannerID: ix.ids[need[i]], Files: files, Result: res})
	}
	if err := ix.cfg.Store.PutLayerResults(ctx, f, lr); err != nil {
		return err
	}
	ix.log.InfoContext(ctx, "layer scanned", "layer", l.Hash, "compressed_bytes", contents.CompressedBytes,
		"uncompressed_bytes", contents.UncompressedBytes, "scanners", len(ss), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// readLayer fetches layer l and reads it in one streaming pass, keeping the
// files the scanners ss asked for. Its span ("read layer") covers the fetch
// and the whole read: inflating, verifying the digest, walking the tar.
func (ix *Indexer) readLayer(ctx context.Context, l *report.Layer, ss []scanner.Scanner) (_ *layer.Contents, err error) {
	ctx, span := ix.tracer.Start(ctx, "read layer")
	defer func() { end(span, err) }()
	rc, err := ix.cfg.Fetcher.Open(ctx, l)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return layer.Read(ctx, rc, l.Hash, ss, ix.cfg.LayerOptions)
}

// Scanners returns the infos of the indexer's scanners, in order.
func (ix *Indexer) Scanners() []scanner.Info { return slices.Clone(ix.infos) }
