// Package config binds a node's settings to command-line flags, with
// environment variables as defaults, and validates them.
package config

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stevedore-dev/stevedore/pkg/enrichment"

	"github.com/stevedore-dev/stevedore/pkg/node"
)

// Options are the settings of a Stevedore process.
type Options struct {
	node.Config
	// Addr is the HTTP API's listen address.
	Addr string
	// sources are the raw --enrichment-source values.
	sources []string
	// reg holds the raw registry and blob-cache settings (registries.go).
	reg registryFlags
	// lim holds the raw bounds of layer reading (limits.go).
	lim limitFlags

	envErrs []error
}

// Roles says which settings a binary takes.
type Roles struct {
	Dispatcher bool
	Worker     bool
	// EmbeddedNATS allows running without NATS_URL.
	EmbeddedNATS bool
}

// Register defines the flags for roles on fs, reading defaults from the
// environment (DATABASE_URL, NATS_URL, STEVEDORE_*). Call Validate after
// fs.Parse.
func Register(fs *flag.FlagSet, roles Roles) *Options {
	o := &Options{}
	fs.StringVar(&o.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "Postgres URL (env DATABASE_URL)")
	natsHelp := "NATS server URL, nats-server >= 2.12 with JetStream (env NATS_URL)"
	if roles.EmbeddedNATS {
		natsHelp += "; empty: embed a JetStream server in this process"
		fs.StringVar(&o.NATSStoreDir, "nats-store-dir", os.Getenv("STEVEDORE_NATS_STORE_DIR"), "embedded JetStream store directory (env STEVEDORE_NATS_STORE_DIR; empty: a temporary one)")
		fs.IntVar(&o.NATSPort, "nats-port", o.envInt("STEVEDORE_NATS_PORT", 0), "embedded NATS port on 127.0.0.1 (env STEVEDORE_NATS_PORT; 0: any free port)")
	}
	fs.StringVar(&o.NATSURL, "nats-url", os.Getenv("NATS_URL"), natsHelp)
	o.registerRegistries(fs, roles)
	o.registerLimits(fs, roles)
	if roles.Dispatcher {
		o.Dispatcher = true
		fs.StringVar(&o.Addr, "addr", envString("STEVEDORE_ADDR", "127.0.0.1:8080"), "HTTP API listen address (env STEVEDORE_ADDR)")
		o.registerWebhooks(fs)
		if v := os.Getenv("STEVEDORE_ENRICHMENT_SOURCES"); v != "" {
			o.sources = strings.Split(v, ",")
		}
		fs.Func("enrichment-source", "NAME=URL: fetch enrichment data NAME from URL on a schedule; repeatable (env STEVEDORE_ENRICHMENT_SOURCES, comma-separated). Names: "+strings.Join(slices.Sorted(maps.Keys(enrichment.Kinds())), ", "), func(v string) error {
			o.sources = append(o.sources, v)
			return nil
		})
		fs.DurationVar(&o.EnrichmentInterval, "enrichment-interval", o.envDuration("STEVEDORE_ENRICHMENT_INTERVAL", 6*time.Hour), "how often enrichment sources are asked (env STEVEDORE_ENRICHMENT_INTERVAL)")
		fs.IntVar(&o.RequeueRate, "requeue-rate", o.envInt("STEVEDORE_REQUEUE_RATE", 10), "partial reports requeued per second when their data arrives (env STEVEDORE_REQUEUE_RATE)")
		fs.IntVar(&o.ReindexRate, "reindex-rate", o.envInt("STEVEDORE_REINDEX_RATE", 5), "re-index jobs queued per second for reports made by an older scanner set (env STEVEDORE_REINDEX_RATE)")
	}
	if roles.Dispatcher || roles.Worker {
		fs.DurationVar(&o.EnrichmentMaxAge, "enrichment-max-age", o.envDuration("STEVEDORE_ENRICHMENT_MAX_AGE", 7*24*time.Hour), "enrichment data older than this makes reports partial (env STEVEDORE_ENRICHMENT_MAX_AGE)")
	}
	if roles.Worker {
		fs.IntVar(&o.Workers, "workers", o.envInt("STEVEDORE_WORKERS", 2), "jobs run at once (env STEVEDORE_WORKERS)")
		fs.DurationVar(&o.LeaseTTL, "lease-ttl", o.envDuration("STEVEDORE_LEASE_TTL", 30*time.Second), "manifest lease duration, renewed every third of it (env STEVEDORE_LEASE_TTL)")
		fs.DurationVar(&o.AckWait, "ack-wait", o.envDuration("STEVEDORE_ACK_WAIT", time.Minute), "JetStream ack wait; in-progress is signalled every third of it (env STEVEDORE_ACK_WAIT)")
		fs.IntVar(&o.MaxDeliver, "max-deliver", o.envInt("STEVEDORE_MAX_DELIVER", 5), "deliveries of one job before it is recorded as IndexError (env STEVEDORE_MAX_DELIVER)")
		fs.DurationVar(&o.Retry.Base, "partial-retry-base", o.envDuration("STEVEDORE_PARTIAL_RETRY_BASE", 5*time.Minute), "first delay before a partial report is retried, doubled per attempt (env STEVEDORE_PARTIAL_RETRY_BASE)")
		fs.DurationVar(&o.Retry.Max, "partial-retry-max", o.envDuration("STEVEDORE_PARTIAL_RETRY_MAX", 24*time.Hour), "longest delay between retries of a partial report (env STEVEDORE_PARTIAL_RETRY_MAX)")
	}
	return o
}

// Validate checks the parsed settings; the error names the flag.
func (o *Options) Validate(roles Roles) error {
	errs := append([]error(nil), o.envErrs...)
	errs = append(errs, o.validateWebhooks()...)
	errs = append(errs, o.validateRegistries(roles)...)
	errs = append(errs, o.validateLimits(roles)...)
	if o.DatabaseURL == "" {
		errs = append(errs, errors.New("--database-url: required (or set DATABASE_URL), e.g. postgres://user@127.0.0.1:5432/stevedore"))
	}
	if !roles.EmbeddedNATS && o.NATSURL == "" {
		errs = append(errs, errors.New("--nats-url: required (or set NATS_URL), e.g. nats://127.0.0.1:4222"))
	}
	if o.NATSPort < 0 || o.NATSPort > 65535 {
		errs = append(errs, fmt.Errorf("--nats-port: %d is not a port", o.NATSPort))
	}
	kinds := enrichment.Kinds()
	o.EnrichmentSources = nil
	for _, src := range o.sources {
		name, u, ok := strings.Cut(strings.TrimSpace(src), "=")
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("--enrichment-source %q: want NAME=URL", src))
		case kinds[name].Name == "":
			errs = append(errs, fmt.Errorf("--enrichment-source %q: unknown data %q (known: %s)", src, name, strings.Join(slices.Sorted(maps.Keys(kinds)), ", ")))
		case !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://"):
			errs = append(errs, fmt.Errorf("--enrichment-source %q: %q is not an http(s) URL", src, u))
		default:
			o.EnrichmentSources = append(o.EnrichmentSources, enrichment.Source{Name: name, URL: u})
		}
	}
	if o.Dispatcher {
		if o.EnrichmentInterval < time.Second {
			errs = append(errs, fmt.Errorf("--enrichment-interval: %s: want at least 1s", o.EnrichmentInterval))
		}
		if o.RequeueRate < 1 {
			errs = append(errs, fmt.Errorf("--requeue-rate: %d: want at least 1", o.RequeueRate))
		}
		if o.ReindexRate < 1 {
			errs = append(errs, fmt.Errorf("--reindex-rate: %d: want at least 1", o.ReindexRate))
		}
	}
	if (o.Dispatcher || roles.Worker) && o.EnrichmentMaxAge < time.Second {
		errs = append(errs, fmt.Errorf("--enrichment-max-age: %s: want at least 1s", o.EnrichmentMaxAge))
	}
	if roles.Worker {
		if o.Retry.Base < time.Second || o.Retry.Max < o.Retry.Base {
			errs = append(errs, fmt.Errorf("--partial-retry-base %s, --partial-retry-max %s: want a base of at least 1s and a max not below it", o.Retry.Base, o.Retry.Max))
		}
		if o.Workers < 1 || o.Workers > 256 {
			errs = append(errs, fmt.Errorf("--workers: %d: want 1 to 256", o.Workers))
		}
		if o.LeaseTTL < time.Second {
			errs = append(errs, fmt.Errorf("--lease-ttl: %s: want at least 1s", o.LeaseTTL))
		}
		if o.AckWait < time.Second {
			errs = append(errs, fmt.Errorf("--ack-wait: %s: want at least 1s", o.AckWait))
		}
		if o.MaxDeliver < 1 {
			errs = append(errs, fmt.Errorf("--max-deliver: %d: want at least 1", o.MaxDeliver))
		}
	}
	return errors.Join(errs...)
}

func envString(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// envInt and envDuration read a default from the environment; a malformed
// value is kept for Validate to report.
func (o *Options) envInt(k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Errorf("environment %s=%q: not a whole number", k, v))
		return def
	}
	return n
}

func (o *Options) envDuration(k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Errorf("environment %s=%q: not a duration such as 30s or 2m", k, v))
		return def
	}
	return d
}
