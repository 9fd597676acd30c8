// Package app assembles Stevedore's parts into a running process: the store,
// the job queue (an external NATS cluster, or a JetStream server embedded in
// the process), the dispatcher with its HTTP API and the background work
// under one elected leader (internal/maintenance), and workers. Every
// binary — stevedore serve and scan, cmd/dispatcher, cmd/worker — starts the
// same app with different roles: their mains only parse flags (through
// internal/config) and call it. Every default is written once, in
// defaults.go.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/stevedore-dev/stevedore/internal/api/clairauth"
	"github.com/stevedore-dev/stevedore/internal/api/clairproxy"
	"github.com/stevedore-dev/stevedore/internal/api/harbor"
	"github.com/stevedore-dev/stevedore/internal/api/webhooks"
	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/layer/blobcache"
	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/maintenance"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/queue/natsembed"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/worker"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/all"
)

// Config configures a node. Zero values take the defaults noted.
type Config struct {
	// DatabaseURL is the Postgres URL (required).
	DatabaseURL string
	// Pool, when set, is an open pool of DatabaseURL whose schema is
	// migrated (postgres.Connect's): the node and Lookup use it instead of
	// connecting, and leave it open. stevedore scan opens one for its
	// lookup and its node.
	Pool *pgxpool.Pool
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
	// JobSecret is the secret (at least queue.MinJobSecret bytes) from which the
	// key sealing the layer credentials of queued jobs is derived; every
	// dispatcher and worker of a fleet holds the same. Empty: a node that
	// embeds its NATS server makes a random key of its own; one on an
	// external NATS puts the credentials in the stream as they are, and
	// says so at start.
	JobSecret []byte

	// Dispatcher enables the dispatcher role and its HTTP API, and the
	// campaign for the leadership of the background work.
	Dispatcher bool
	// NoMaintenance leaves the background work (sweeps, webhook retries,
	// enrichment updater) out of the dispatcher role: stevedore scan, whose
	// process lives only for its images, neither campaigns nor runs it.
	NoMaintenance bool
	// Workers is the number of jobs this node runs at once; 0 disables the
	// worker role.
	Workers int

	// LeaseTTL (default DefaultLeaseTTL), AckWait (default DefaultAckWait:
	// a dead worker's job is taken over when its lease expires), MaxDeliver
	// (default DefaultMaxDeliver).
	LeaseTTL   time.Duration
	AckWait    time.Duration
	MaxDeliver int
	// RetryBase is the first delay after a transient failure (default
	// DefaultRetryBase).
	RetryBase time.Duration

	// Scanners is the scanner set (default scanners/all.Default()).
	Scanners []scanner.Scanner
	// Fetcher opens layers (default fetch.New()).
	Fetcher indexer.Fetcher
	// WrapFetcher, when set, wraps the workers' fetcher (stevedore scan
	// counts layers and bytes with it for its progress display).
	WrapFetcher func(indexer.Fetcher) indexer.Fetcher
	// Resolver resolves image references (default: a resolve.Resolver on
	// the node's registry client).
	Resolver intake.Resolver
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
	// EnrichmentInterval is how often sources are asked (default
	// DefaultEnrichmentInterval).
	EnrichmentInterval time.Duration
	// EnrichmentMaxAge is how old loaded data may be before reports using
	// it are partial (default DefaultEnrichmentMaxAge).
	EnrichmentMaxAge time.Duration
	// Retry is the backoff of partial reports (default DefaultRetry).
	Retry queue.RetryPolicy
	// RequeueRate bounds partial reports requeued per second when the data
	// they wait for arrives (default DefaultRequeueRate).
	RequeueRate int
	// ReindexRate bounds re-index jobs queued per second by the sweep of
	// reports made by an older scanner set (default DefaultReindexRate).
	ReindexRate int
	// SweepInterval is how often the sweeps look (default
	// DefaultSweepInterval).
	SweepInterval time.Duration
	// ElectInterval is how often a dispatcher that does not lead the
	// background work asks to (default DefaultElectInterval).
	ElectInterval time.Duration
	// UpgradeWindow is how long after migration 00025 is applied to an
	// older database usable reports are stored whole, for the replicas of
	// the release before it that a rolling upgrade has not replaced yet
	// (postgres.WithUpgradeWindow; default DefaultUpgradeWindow, negative:
	// none).
	UpgradeWindow time.Duration

	// IndexWait bounds how long POST index_report waits for a report
	// (default DefaultIndexWait).
	IndexWait time.Duration
	// ClairServePartial serves IndexPartial reports as they are on Clair's
	// paths, instead of as IndexFinished.
	ClairServePartial bool
	// AnswerBytes bounds the bytes of report answers the API holds in
	// memory at once (default DefaultAnswerBytes).
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
	// Webhooks serves /webhooks/ (part of Handler); its lookups that
	// failed are retried by a background service. Nil without the
	// dispatcher role.
	Webhooks *webhooks.Handler
	// BlobCache is the workers' blob cache (nil when disabled).
	BlobCache *blobcache.Cache
	// Enrichment is the enrichment data store.
	Enrichment *enrich.Store
	// Updater keeps enrichment data current (nil without sources or the
	// dispatcher role).
	Updater *enrich.Updater
	// Elector runs the background work (sweeps, webhook retries, the
	// enrichment updater) while this node leads it; nil without the
	// dispatcher role.
	Elector *maintenance.Elector

	leases       *leases.Manager
	httpTimeouts HTTPTimeouts

	embedded *server.Server
	tempDir  string
	// ownPool: the store's pool was opened by Start (Close closes it).
	ownPool bool
	nc      *nats.Conn
	log     *slog.Logger
}

// shared are the parts the roles share.
type shared struct {
	pool      *pgxpool.Pool
	enrichers []enrich.Enricher
	state     string
	pub       *queue.Publisher
	sealer    *queue.Sealer
	registry  *registry.Client
}

// Start connects to (or embeds) what the node needs and sets up its roles.
// Workers do not take jobs, nor the background work start, until Run.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	cfg = prepare(cfg)
	n = &Node{log: cfg.Logger, httpTimeouts: cfg.HTTP}
	// A failure returns a nil *Node, so close what was opened through a
	// copy of the pointer.
	opened := n
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()
	pool, err := n.connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	sh, err := n.shared(pool, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Dispatcher {
		if err := n.startDispatcher(cfg, sh); err != nil {
			return nil, err
		}
		if !cfg.NoMaintenance {
			if err := n.startMaintenance(cfg); err != nil {
				return nil, err
			}
		}
	}
	if cfg.Workers > 0 {
		if err := n.startWorkers(ctx, cfg, sh); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// connect opens the store (migrating its schema; unless cfg.Pool is open
// already) and the queue at once:
// they are independent, and each costs a few round trips (or, for an
// embedded NATS server, its start). The first error is returned; what was
// opened is left for Close.
func (n *Node) connect(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pool := cfg.Pool
	g, gctx := errgroup.WithContext(ctx)
	if pool == nil {
		g.Go(func() error {
			p, err := postgres.Connect(gctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			pool, n.ownPool = p, true
			return nil
		})
	}
	g.Go(func() error { return n.connectQueue(gctx, cfg) })
	err := g.Wait()
	if pool != nil {
		n.Store = postgres.New(pool, postgres.WithUpgradeWindow(cfg.UpgradeWindow))
	}
	return pool, err
}

// prepare fills cfg's zero settings with the defaults and the process's
// telemetry, scanners and holder name.
func prepare(cfg Config) Config {
	cfg = cfg.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = otel.GetMeterProvider()
	}
	if cfg.Scanners == nil {
		cfg.Scanners = all.Default()
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		cfg.Holder = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return cfg
}

// connectQueue connects to NATS (embedding a server when no URL is given)
// and sets up the job stream.
func (n *Node) connectQueue(ctx context.Context, cfg Config) error {
	url := cfg.NATSURL
	if url == "" {
		dir := cfg.NATSStoreDir
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "stevedore-nats-"); err != nil {
				return fmt.Errorf("embedded nats: %w", err)
			}
			n.tempDir = dir
		}
		var err error
		n.embedded, err = natsembed.Start(natsembed.Options{StoreDir: dir, Port: cfg.NATSPort})
		if err != nil {
			return err
		}
		url = n.embedded.ClientURL()
		cfg.Logger.Info("embedded NATS JetStream server started", "url", url, "store_dir", dir)
	}
	n.NATSURL = url
	var err error
	n.nc, err = nats.Connect(url, nats.Name("stevedore "+cfg.Holder), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	n.JS, err = jetstream.New(n.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	stream, err := queue.EnsureStream(ctx, n.JS, queue.StreamConfig{Replicas: cfg.NATSReplicas})
	if err != nil {
		return err
	}
	cfg.Logger.Info("job stream", "name", stream.CachedInfo().Config.Name, "replicas", stream.CachedInfo().Config.Replicas,
		"cluster", n.nc.ConnectedClusterName())
	return nil
}

// shared sets up the parts every role uses.
func (n *Node) shared(pool *pgxpool.Pool, cfg Config) (shared, error) {
	n.Enrichment = enrich.NewStore(n.Store)
	es := enrichers(n.Enrichment, cfg.EnrichmentMaxAge)
	n.leases = leases.New(pool, cfg.Holder, leases.WithTTL(cfg.LeaseTTL), leases.WithTracerProvider(cfg.TracerProvider))
	sealer, err := jobSealer(cfg)
	if err != nil {
		return shared{}, err
	}
	return shared{
		pool:      pool,
		enrichers: es,
		state:     indexer.State(cfg.Scanners, es),
		pub:       queue.NewPublisher(n.JS, cfg.TracerProvider, queue.WithSealer(sealer)),
		sealer:    sealer,
		registry:  registry.New(cfg.Registries, registry.WithLogger(cfg.Logger), registry.WithMeterProvider(cfg.MeterProvider)),
	}, nil
}

// jobSealer is the sealer of the layer credentials of the node's jobs (see
// Config.JobSecret); nil when they go into the stream as they are.
func jobSealer(cfg Config) (*queue.Sealer, error) {
	switch {
	case len(cfg.JobSecret) > 0:
		return queue.NewSealer(cfg.JobSecret)
	case cfg.NATSURL == "":
		return queue.NewRandomSealer(), nil
	}
	if cfg.Dispatcher {
		cfg.Logger.Warn("layer credentials of queued jobs are stored in the NATS stream unencrypted until the job runs: give dispatchers and workers the same --job-secret-file")
	}
	return nil, nil
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
