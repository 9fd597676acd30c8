package app

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
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
	"github.com/stevedore-dev/stevedore/internal/layer/claim"
	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/maintenance"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/worker"
)

// startDispatcher sets up the dispatcher role: intake and the HTTP API,
// with the webhook endpoints, Clair's proxied paths and authentication.
func (n *Node) startDispatcher(cfg Config, sh shared) (err error) {
	if cfg.Resolver == nil {
		cfg.Resolver = resolve.New(resolve.WithClient(sh.registry))
	}
	n.Dispatcher = intake.New(n.Store, sh.pub, cfg.Resolver, sh.state, cfg.Logger, intake.WithAllowlist(cfg.Registries.Allowlist))
	harborCfg := cfg.Harbor
	if harborCfg.Transport == nil {
		harborCfg.Transport = sh.registry.Transport()
	}
	n.Handler = api.New(n.Dispatcher, n.Store, cfg.Logger, cfg.TracerProvider,
		api.WithServePartial(cfg.ClairServePartial), api.WithMeterProvider(cfg.MeterProvider),
		api.WithIndexWait(cfg.IndexWait), api.WithAnswerBytes(cfg.AnswerBytes), api.WithHarbor(harborCfg))
	// Tag lookups go through the registry client fetches use (credentials
	// per registry, plain HTTP, limits, the Retry-After gates, the
	// allowlist), with one attempt per request: a failed lookup is stored
	// and retried by the webhooks' own backoff, not while the registry that
	// sent the event waits for the answer.
	if cfg.Webhooks.Tags == nil {
		cfg.Webhooks.Tags = resolve.New(resolve.WithClient(sh.registry.WithMaxAttempts(1)))
	}
	n.Webhooks = webhooks.New(cfg.Webhooks, n.Dispatcher, sh.pool, cfg.Logger, cfg.TracerProvider)
	n.Handler = n.Webhooks.Mount(n.Handler)
	if n.Handler, err = clairproxy.Mount(cfg.Clair, n.Handler, clairproxy.Options{Logger: cfg.Logger, TracerProvider: cfg.TracerProvider}); err != nil {
		return err
	}
	if cfg.Auth.Exempt == nil {
		cfg.Auth.Exempt = []string{"/healthz", "/metrics", "/webhooks/", harbor.Prefix + "/"}
	}
	n.Handler, err = clairauth.New(cfg.Auth, n.Handler, cfg.Logger)
	return err
}

// startMaintenance sets up the background work of the dispatcher role as
// services under one elected leader: the requeue and re-index sweeps, the
// webhook retries, the compactor of reports stored twice and, with sources,
// the enrichment updater.
func (n *Node) startMaintenance(cfg Config) error {
	sweep := maintenance.Sweep{Interval: cfg.SweepInterval, Logger: cfg.Logger}
	requeue, reindex, compact := sweep, sweep, sweep
	requeue.Rate, reindex.Rate, compact.Rate = cfg.RequeueRate, cfg.ReindexRate, CompactRate
	services := []maintenance.Service{
		maintenance.NewRequeuer(n.Dispatcher.RequeueWaiting, requeue),
		maintenance.NewReindexer(n.Dispatcher.ReindexStale, reindex),
		maintenance.NewWebhookRetrier(n.Webhooks),
		maintenance.NewCompactor(n.Store.CompactReports, compact, CompactRest),
	}
	if len(cfg.EnrichmentSources) > 0 {
		n.Updater = &enrich.Updater{Store: n.Enrichment, Sources: cfg.EnrichmentSources, Interval: cfg.EnrichmentInterval, Logger: cfg.Logger}
		services = append(services, maintenance.NewUpdater(n.Updater, cfg.Logger))
	}
	var err error
	n.Elector, err = maintenance.NewElector(maintenance.ElectorConfig{
		Leases: n.leases, Services: services, Interval: cfg.ElectInterval, Logger: cfg.Logger,
	})
	return err
}

// startWorkers sets up the worker role: the fetcher, the indexer, the
// consumer and the workers.
func (n *Node) startWorkers(ctx context.Context, cfg Config, sh shared) (err error) {
	if cfg.LayerOptions.ProcessSpool == nil {
		cfg.LayerOptions.ProcessSpool = layer.NewSpoolBudget(layer.DefaultMaxProcessSpool)
	}
	if cfg.Fetcher == nil {
		if n.BlobCache, err = openBlobCache(cfg); err != nil {
			return err
		}
		cfg.Fetcher = fetch.New(fetch.WithClient(sh.registry), fetch.WithCache(n.BlobCache), fetch.WithLogger(cfg.Logger),
			fetch.WithMeterProvider(cfg.MeterProvider), fetch.WithStallLimits(cfg.BlobStall))
	}
	if cfg.WrapFetcher != nil {
		cfg.Fetcher = cfg.WrapFetcher(cfg.Fetcher)
	}
	// The indexer registers its scanners in Postgres while the consumer is
	// set up in JetStream: independent round trips.
	var ix *indexer.Indexer
	var cons jetstream.Consumer
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		ix, err = indexer.New(gctx, indexer.Config{
			Store: n.Store, Fetcher: cfg.Fetcher, Scanners: cfg.Scanners, LayerOptions: cfg.LayerOptions,
			MaxLayerPackages: cfg.MaxLayerPackages, MaxReportPackages: cfg.MaxReportPackages,
			Enrichers: sh.enrichers, Retry: cfg.Retry, Claims: claim.New(n.leases), MeterProvider: cfg.MeterProvider,
			ProgressAfter: indexer.DefaultProgressAfter, TracerProvider: cfg.TracerProvider, Logger: cfg.Logger,
		})
		return err
	})
	g.Go(func() (err error) {
		cons, err = queue.EnsureConsumer(gctx, n.JS, queue.ConsumerConfig{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver})
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	n.Worker, err = worker.New(worker.Config{
		Consumer: cons, Leases: n.leases, Indexer: ix, Publisher: sh.pub, Concurrency: cfg.Workers,
		AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, RetryBase: cfg.RetryBase, Sealer: sh.sealer,
		TracerProvider: cfg.TracerProvider, Logger: cfg.Logger,
	})
	return err
}
