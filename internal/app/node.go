// Package app assembles Stevedore's parts into a running process: the store,
// the job queue (an external NATS cluster, or a JetStream server embedded in
// the process), the dispatcher with its HTTP API, and workers. The binaries
// in cmd/ only parse their flags and call Start.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/api/clairauth"
	"github.com/stevedore-dev/stevedore/internal/api/clairproxy"
	"github.com/stevedore-dev/stevedore/internal/api/harbor"
	"github.com/stevedore-dev/stevedore/internal/api/webhooks"
	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/layer/blobcache"
	"github.com/stevedore-dev/stevedore/internal/layer/claim"
	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/queue/natsembed"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/telemetry"
	"github.com/stevedore-dev/stevedore/internal/worker"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/all"
)

// Config configures a node. Zero values take the defaults noted.
type Config struct {
	// DatabaseURL is the Postgres URL (required).
	DatabaseURL string
	// NATSURL is an external NATS server or cluster (nats-server >= 2.12
	// with JetStream). Empty: embed a server in the process.
	NATSURL string
	// NATSStoreDir is the embedded server's JetStream directory. Empty: a
	// temporary directory removed at Close.
	NATSStoreDir string
	// NATSPort is the embedded server's port on 127.0.0.1 (default: any
	// free port).
	NATSPort int
	// NATSReplicas is the job stream's replica count (0: 3 when the NATS
	// server is part of a cluster, 1 for a single or embedded server).
	NATSReplicas int

	// Dispatcher enables the dispatcher role and its HTTP API.
	Dispatcher bool
	// Workers is the number of jobs this node runs at once; 0 disables the
	// worker role.
	Workers int

	// LeaseTTL (default leases.DefaultTTL, 30s), AckWait (default
	// queue.DefaultAckWait, 30s: a dead worker's job is taken over when its
	// lease expires), MaxDeliver (default 5).
	LeaseTTL   time.Duration
	AckWait    time.Duration
	MaxDeliver int
	// RetryBase is the first delay after a transient failure (default 2s).
	RetryBase time.Duration

	// Scanners is the scanner set (default scanners/all.Default()).
	Scanners []scanner.Scanner
	// Fetcher opens layers (default fetch.New()).
	Fetcher indexer.Fetcher
	// WrapFetcher, when set, wraps the workers' fetcher (stevedore scan
	// counts layers and bytes with it for its progress display).
	WrapFetcher func(indexer.Fetcher) indexer.Fetcher
	// Resolver resolves image references (default resolve.New()).
	Resolver *resolve.Resolver
	// LayerOptions bound the layer reader; a nil ProcessSpool is a budget
	// of layer.DefaultMaxProcessSpool for the node's workers.
	LayerOptions layer.Options
	// MaxLayerPackages and MaxReportPackages bound the packages of one
	// layer (per scanner) and of one report (defaults
	// indexer.DefaultMaxLayerPackages, DefaultMaxReportPackages).
	MaxLayerPackages, MaxReportPackages int
	// Holder names this node in leases (default host-pid).
	Holder string

	// EnrichmentSources are fetched by the updater (none: data only comes
	// from imports, as in an air-gapped site).
	EnrichmentSources []enrich.Source
	// EnrichmentInterval is how often sources are asked (default 6h).
	EnrichmentInterval time.Duration
	// EnrichmentMaxAge is how old loaded data may be before reports using
	// it are partial (default 7 days).
	EnrichmentMaxAge time.Duration
	// Retry is the backoff of partial reports (default 5m doubling to 24h).
	Retry queue.RetryPolicy
	// RequeueRate bounds partial reports requeued per second when the data
	// they wait for arrives (default 10).
	RequeueRate int
	// ReindexRate bounds re-index jobs queued per second by the sweep of
	// reports made by an older scanner set (default 5).
	ReindexRate int
	// SweepInterval is how often the sweeps look (default 1s).
	SweepInterval time.Duration
	// AfterIndex is a test hook passed to the workers (see worker.Config).
	AfterIndex func(ctx context.Context, r *report.Report)

	// IndexWait bounds how long POST index_report waits for a report
	// (default api.DefaultIndexWait).
	IndexWait time.Duration
	// ClairServePartial serves IndexPartial reports as they are on Clair's
	// paths, instead of as IndexFinished.
	ClairServePartial bool
	// AnswerBytes bounds the bytes of report answers the API holds in
	// memory at once (default api.DefaultAnswerBytes).
	AnswerBytes int64

	// Webhooks configures the registry webhook endpoints of the dispatcher
	// role (internal/api/webhooks); without secrets every endpoint is disabled.
	Webhooks webhooks.Config

	// Harbor configures Harbor's scanner API under /harbor/api/v1/
	// (internal/api/harbor); without a token it is disabled.
	Harbor harbor.Config

	// Auth authenticates the HTTP API's requests with Clair's pre-shared-key
	// JWTs (internal/api/clairauth); without a key the API is open. Exempt defaults
	// to /healthz, /metrics, /webhooks/ and /harbor/ (webhooks and Harbor's
	// scanner API have secrets of their own).
	Auth clairauth.Config
	// Clair names the Clair matcher and notifier that /matcher/ and
	// /notifier/ are passed to (internal/api/clairproxy), so that Quay has one
	// endpoint.
	Clair clairproxy.Config

	// Registries configures the registry client (internal/registry):
	// credentials per registry, mirrors, plain HTTP, request limits,
	// retries, and the allowlist the dispatcher and the fetcher enforce.
	Registries registry.Config
	// BlobCacheDir and BlobCacheSize (bytes) set the workers' local cache
	// of compressed layer blobs (internal/layer/blobcache); size 0 disables it.
	BlobCacheDir  string
	BlobCacheSize int64
	// BlobStall bounds how slowly a layer may download before the fetch
	// fails (transient: the job is retried with backoff); zero fields take
	// fetch's defaults, negative ones disable the rule.
	BlobStall fetch.StallLimits
	// MeterProvider receives the metrics (default: the global provider).
	MeterProvider metric.MeterProvider
	// HTTP bounds the connections of the HTTP API server (Serve).
	HTTP HTTPTimeouts

	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
}

// Node is a running Stevedore process.
type Node struct {
	Store      *postgres.Store
	JS         jetstream.JetStream
	NATSURL    string
	Dispatcher *intake.Dispatcher
	// Handler is the HTTP API (nil without the dispatcher role).
	Handler http.Handler
	// Worker is nil without the worker role.
	Worker *worker.Worker
	// Webhooks serves /webhooks/ (part of Handler) and retries failed
	// lookups in Run; nil without the dispatcher role.
	Webhooks *webhooks.Handler
	// BlobCache is the workers' blob cache (nil when disabled).
	BlobCache *blobcache.Cache
	// Enrichment is the enrichment data store.
	Enrichment *enrich.Store
	// Updater keeps enrichment data current (nil without sources or the
	// dispatcher role).
	Updater *enrich.Updater

	leases        *leases.Manager
	httpTimeouts  HTTPTimeouts
	requeueRate   int
	reindexRate   int
	sweepInterval time.Duration

	embedded *server.Server
	tempDir  string
	nc       *nats.Conn
	log      *slog.Logger
}

// Start connects to (or embeds) what the node needs and sets up its roles.
// Workers do not take jobs until Run.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.Scanners == nil {
		cfg.Scanners = all.Default()
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		cfg.Holder = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = queue.DefaultAckWait
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = 5
	}
	n = &Node{log: cfg.Logger, httpTimeouts: cfg.HTTP}
	// A failure returns a nil *Node, so close what was opened through a
	// copy of the pointer.
	opened := n
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()

	pool, err := postgres.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	n.Store = postgres.New(pool)

	url := cfg.NATSURL
	if url == "" {
		dir := cfg.NATSStoreDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "stevedore-nats-"); err != nil {
				return nil, fmt.Errorf("embedded nats: %w", err)
			}
			n.tempDir = dir
		}
		n.embedded, err = natsembed.Start(natsembed.Options{StoreDir: dir, Port: cfg.NATSPort})
		if err != nil {
			return nil, err
		}
		url = n.embedded.ClientURL()
		cfg.Logger.Info("embedded NATS JetStream server started", "url", url, "store_dir", dir)
	}
	n.NATSURL = url
	n.nc, err = nats.Connect(url, nats.Name("stevedore "+cfg.Holder), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	n.JS, err = jetstream.New(n.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	stream, err := queue.EnsureStream(ctx, n.JS, queue.StreamConfig{Replicas: cfg.NATSReplicas})
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("job stream", "name", stream.CachedInfo().Config.Name, "replicas", stream.CachedInfo().Config.Replicas,
		"cluster", n.nc.ConnectedClusterName())

	if cfg.EnrichmentMaxAge == 0 {
		cfg.EnrichmentMaxAge = 7 * 24 * time.Hour
	}
	n.requeueRate = cfg.RequeueRate
	if n.requeueRate <= 0 {
		n.requeueRate = 10
	}
	n.reindexRate = cfg.ReindexRate
	if n.reindexRate <= 0 {
		n.reindexRate = 5
	}
	n.sweepInterval = orDefault(cfg.SweepInterval, time.Second)
	n.Enrichment = enrich.NewStore(pool)
	es := enrichers(n.Enrichment, cfg.EnrichmentMaxAge)
	state := indexer.State(cfg.Scanners, es)
	n.leases = leases.New(pool, cfg.Holder, leases.WithTTL(orDefault(cfg.LeaseTTL, leases.DefaultTTL)), leases.WithTracerProvider(cfg.TracerProvider))
	pub := queue.NewPublisher(n.JS, cfg.TracerProvider)
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = otel.GetMeterProvider()
	}
	rc := registry.New(cfg.Registries, registry.WithLogger(cfg.Logger), registry.WithMeterProvider(cfg.MeterProvider))
	if cfg.Dispatcher && len(cfg.EnrichmentSources) > 0 {
		n.Updater = &enrich.Updater{Store: n.Enrichment, Sources: cfg.EnrichmentSources, Interval: cfg.EnrichmentInterval,
			Leases: n.leases, Logger: cfg.Logger}
	}
	if cfg.Dispatcher {
		if cfg.Resolver == nil {
			cfg.Resolver = resolve.New(resolve.WithClient(rc))
		}
		n.Dispatcher = intake.New(n.Store, pub, cfg.Resolver, state, cfg.Logger, intake.WithAllowlist(cfg.Registries.Allowlist))
		apiOpts := []api.Option{api.WithServePartial(cfg.ClairServePartial), api.WithMeterProvider(cfg.MeterProvider)}
		if cfg.IndexWait > 0 {
			apiOpts = append(apiOpts, api.WithIndexWait(cfg.IndexWait))
		}
		if cfg.AnswerBytes > 0 {
			apiOpts = append(apiOpts, api.WithAnswerBytes(cfg.AnswerBytes))
		}
		harborCfg := cfg.Harbor
		if harborCfg.Transport == nil {
			harborCfg.Transport = rc.Transport()
		}
		apiOpts = append(apiOpts, api.WithHarbor(harborCfg))
		n.Handler = api.New(n.Dispatcher, n.Store, cfg.Logger, cfg.TracerProvider, apiOpts...)
		// Tag lookups go through the registry client fetches use
		// (credentials per registry, plain HTTP, limits, the Retry-After
		// gates, the allowlist), with one attempt per request: a failed
		// lookup is stored and retried by the webhooks' own backoff, not
		// while the registry that sent the event waits for the answer.
		if cfg.Webhooks.Tags == nil {
			cfg.Webhooks.Tags = resolve.New(resolve.WithClient(rc.WithMaxAttempts(1)))
		}
		n.Webhooks = webhooks.New(cfg.Webhooks, n.Dispatcher, pool, cfg.Logger, cfg.TracerProvider)
		n.Handler = n.Webhooks.Mount(n.Handler)
		if n.Handler, err = clairproxy.Mount(cfg.Clair, n.Handler, clairproxy.Options{Logger: cfg.Logger, TracerProvider: cfg.TracerProvider}); err != nil {
			return nil, err
		}
		if cfg.Auth.Exempt == nil {
			cfg.Auth.Exempt = []string{"/healthz", "/metrics", "/webhooks/", harbor.Prefix + "/"}
		}
		if n.Handler, err = clairauth.New(cfg.Auth, n.Handler, cfg.Logger); err != nil {
			return nil, err
		}
	}
	if cfg.Workers > 0 {
		if cfg.LayerOptions.ProcessSpool == nil {
			cfg.LayerOptions.ProcessSpool = layer.NewSpoolBudget(layer.DefaultMaxProcessSpool)
		}
		if cfg.Fetcher == nil {
			if n.BlobCache, err = openBlobCache(cfg); err != nil {
				return nil, err
			}
			cfg.Fetcher = fetch.New(fetch.WithClient(rc), fetch.WithCache(n.BlobCache), fetch.WithLogger(cfg.Logger), fetch.WithMeterProvider(cfg.MeterProvider), fetch.WithStallLimits(cfg.BlobStall))
		}
		if cfg.WrapFetcher != nil {
			cfg.Fetcher = cfg.WrapFetcher(cfg.Fetcher)
		}
		ix, err := indexer.New(ctx, indexer.Config{
			Store: n.Store, Fetcher: cfg.Fetcher, Scanners: cfg.Scanners, LayerOptions: cfg.LayerOptions,
			MaxLayerPackages: cfg.MaxLayerPackages, MaxReportPackages: cfg.MaxReportPackages,
			Enrichers: es, Retry: cfg.Retry, Claims: claim.New(n.leases), MeterProvider: cfg.MeterProvider,
			TracerProvider: cfg.TracerProvider, Logger: cfg.Logger,
		})
		if err != nil {
			return nil, err
		}
		cons, err := queue.EnsureConsumer(ctx, n.JS, queue.ConsumerConfig{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver})
		if err != nil {
			return nil, err
		}
		n.Worker, err = worker.New(worker.Config{
			Consumer: cons, Leases: n.leases, Indexer: ix, Publisher: pub, Concurrency: cfg.Workers,
			AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, RetryBase: cfg.RetryBase, AfterIndex: cfg.AfterIndex,
			TracerProvider: cfg.TracerProvider, Logger: cfg.Logger,
		})
		if err != nil {
			return nil, err
		}
	}
	return n, nil
}

// State is the scanner-set state of a node with the given scanners (nil:
// the default ones) and the enrichers every node runs.
func State(ss []scanner.Scanner) string {
	if ss == nil {
		ss = all.Default()
	}
	return indexer.State(ss, enrichers(nil, 0))
}

// enrichers are the enrichers every node runs, in order.
func enrichers(st *enrich.Store, maxAge time.Duration) []enrich.Enricher {
	return []enrich.Enricher{
		// Before RepositoryCPEs, so that the content sets it finds get
		// their CPEs in the same run.
		&enrich.ContainerNames{Store: st, MaxAge: maxAge},
		&enrich.RepositoryCPEs{Store: st, MaxAge: maxAge},
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Run runs the node's background work until ctx ends: the workers (worker
// role); the requeue sweep of partial reports and the enrichment updater
// (dispatcher role; one replica at a time does each round).
func (n *Node) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if n.Worker != nil {
		g.Go(func() error { return n.Worker.Run(ctx) })
	}
	if n.Dispatcher != nil {
		g.Go(func() error { n.sweep(ctx); return nil })
	}
	if n.Updater != nil {
		g.Go(func() error { return n.Updater.Run(ctx) })
	}
	if n.Webhooks != nil {
		g.Go(func() error { n.Webhooks.RunRetries(ctx); return nil })
	}
	g.Go(func() error { <-ctx.Done(); return nil })
	return g.Wait()
}

// sweep, every sweep interval, requeues the partial reports whose data has
// arrived or whose retry an operator asked for (at most RequeueRate a
// second), and queues re-index jobs for reports made by an older scanner set
// or that an operator asked to re-index (at most ReindexRate a second). One
// replica sweeps each round: it holds a lease while it does.
func (n *Node) sweep(ctx context.Context) {
	t := time.NewTicker(n.sweepInterval)
	defer t.Stop()
	limit := max(1, int(float64(n.requeueRate)*n.sweepInterval.Seconds()))
	reindexLimit := max(1, int(float64(n.reindexRate)*n.sweepInterval.Seconds()))
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l, err := n.leases.Acquire(ctx, "sweep")
		if err != nil {
			continue // busy: another replica sweeps this round
		}
		if _, err := n.Dispatcher.RequeueWaiting(l.Context(), limit); err != nil && ctx.Err() == nil {
			n.log.WarnContext(ctx, "requeue partial reports", "error", err)
		}
		if _, err := n.Dispatcher.ReindexStale(l.Context(), reindexLimit); err != nil && ctx.Err() == nil {
			n.log.WarnContext(ctx, "queue re-index jobs", "error", err)
		}
		l.Release(context.WithoutCancel(ctx))
	}
}

// Close releases everything Start opened.
func (n *Node) Close() {
	if n.nc != nil {
		n.nc.Drain()
		n.nc.Close()
	}
	if n.embedded != nil {
		n.embedded.Shutdown()
		n.embedded.WaitForShutdown()
	}
	if n.tempDir != "" {
		os.RemoveAll(n.tempDir)
	}
	if n.Store != nil {
		n.Store.Pool().Close()
	}
	if n.BlobCache != nil {
		n.BlobCache.Close()
	}
}

// Serve runs the node until ctx ends: the HTTP API on addr (with the
// dispatcher role) and the workers (with the worker role).
func (n *Node) Serve(ctx context.Context, addr string) error {
	errc := make(chan error, 2)
	var srv *http.Server
	if n.Handler != nil {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("HTTP API: %w", err)
		}
		srv = NewHTTPServer(n.Handler, n.httpTimeouts)
		n.log.Info("HTTP API listening", "addr", ln.Addr().String())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("HTTP API on %s: %w", addr, err)
			}
		}()
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { errc <- n.Run(wctx) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	}
	cancel()
	return err
}

// RunProcess is a binary's whole life: tracing from the OTEL_* environment
// (named service), Start, Serve on addr until ctx ends, Close.
func RunProcess(ctx context.Context, service string, cfg Config, addr string) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tp, shutdown, err := telemetry.Setup(ctx, service, cfg.Logger)
	if err != nil {
		return err
	}
	defer shutdown(context.Background())
	mp, mshutdown, err := telemetry.SetupMetrics(ctx, service, cfg.Logger)
	if err != nil {
		return err
	}
	defer mshutdown(context.Background())
	cfg.TracerProvider, cfg.MeterProvider = tp, mp
	n, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Serve(ctx, addr)
}
