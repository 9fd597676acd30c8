package app

import (
	"time"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/queue"
)

// The defaults of a node's settings, written here once: the flags of
// internal/config show them (and README documents them; a test checks both),
// Start fills a Config's zero fields with them, and the parts below (queue,
// worker, enrich) take the values they are given and have no defaults of
// their own for these.
const (
	// DefaultAddr is the HTTP API's listen address.
	DefaultAddr = "127.0.0.1:8080"
	// DefaultWorkers is the number of jobs a worker node runs at once.
	DefaultWorkers = 2
	// DefaultLeaseTTL is how long a manifest lease lasts without renewal
	// (renewed every third of it).
	DefaultLeaseTTL = leases.DefaultTTL
	// DefaultAckWait is the workers' consumer's ack wait: how long a
	// delivered job may go without an ack or an in-progress signal (sent
	// every third of it) before it is redelivered. It is no longer than the
	// default lease TTL, so the job of a worker that died is redelivered by
	// the time its lease expires; a delivery that finds the lease still held
	// waits only for what is left of it. A longer ack wait delays that
	// takeover.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxDeliver bounds the deliveries of one job; the last records
	// IndexError.
	DefaultMaxDeliver = 5
	// DefaultRetryBase is the first nak delay after a transient failure,
	// doubled per delivery.
	DefaultRetryBase = 2 * time.Second
	// DefaultEnrichmentInterval is how often enrichment sources are asked.
	DefaultEnrichmentInterval = 6 * time.Hour
	// DefaultEnrichmentMaxAge is how old loaded enrichment data may be
	// before reports using it are partial.
	DefaultEnrichmentMaxAge = 7 * 24 * time.Hour
	// DefaultRequeueRate bounds the partial reports requeued per second
	// when the data they wait for arrives.
	DefaultRequeueRate = 10
	// DefaultReindexRate bounds the re-index jobs queued per second for
	// reports made by an older scanner set.
	DefaultReindexRate = 5
	// DefaultSweepInterval is how often the requeue and re-index sweeps
	// look.
	DefaultSweepInterval = time.Second
	// CompactRate bounds the stored reports the compactor looks at per
	// second (maintenance.NewCompactor): those stored twice by a release
	// before migration 00025 are stored once, a 10,000-report pass in 20 s.
	CompactRate = 500
	// CompactRest is how long the compactor rests after a pass over the
	// stored reports.
	CompactRest = time.Hour
	// DefaultUpgradeWindow is how long usable reports are stored whole
	// after migration 00025 is applied to an older database: a rolling
	// upgrade's replacement of the release before it.
	DefaultUpgradeWindow = time.Hour
	// DefaultElectInterval is how often a dispatcher that is not the
	// leader of the background work asks to become it.
	DefaultElectInterval = time.Second
	// DefaultIndexWait bounds how long POST index_report waits for a
	// report.
	DefaultIndexWait = api.DefaultIndexWait
	// DefaultAnswerBytes bounds the report answers the API holds in memory
	// at once.
	DefaultAnswerBytes = api.DefaultAnswerBytes
	// DefaultBlobCacheSize is the cap of the workers' blob cache that the
	// flags offer (in a Config, size 0 disables the cache).
	DefaultBlobCacheSize = 10 << 30
)

// DefaultRetry is the backoff of partial reports: 5 minutes doubling to a
// day.
func DefaultRetry() queue.RetryPolicy { return queue.DefaultRetryPolicy() }

// Defaults returns a Config holding every default this package applies.
func Defaults() Config {
	return Config{}.withDefaults()
}

// withDefaults returns c with its zero settings set to the defaults. Fields
// whose zero value means something (a disabled role, no blob cache) are
// left as they are.
func (c Config) withDefaults() Config {
	setDuration(&c.LeaseTTL, DefaultLeaseTTL)
	setDuration(&c.AckWait, DefaultAckWait)
	setInt(&c.MaxDeliver, DefaultMaxDeliver)
	setDuration(&c.RetryBase, DefaultRetryBase)
	setDuration(&c.EnrichmentInterval, DefaultEnrichmentInterval)
	setDuration(&c.EnrichmentMaxAge, DefaultEnrichmentMaxAge)
	if c.Retry.Base <= 0 {
		c.Retry = DefaultRetry()
	}
	setInt(&c.RequeueRate, DefaultRequeueRate)
	setInt(&c.ReindexRate, DefaultReindexRate)
	setDuration(&c.SweepInterval, DefaultSweepInterval)
	setDuration(&c.ElectInterval, DefaultElectInterval)
	if c.UpgradeWindow == 0 {
		c.UpgradeWindow = DefaultUpgradeWindow
	}
	setDuration(&c.IndexWait, DefaultIndexWait)
	if c.AnswerBytes <= 0 {
		c.AnswerBytes = DefaultAnswerBytes
	}
	return c
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func setInt(n *int, def int) {
	if *n <= 0 {
		*n = def
	}
}
