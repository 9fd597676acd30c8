package config

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/stevedore-dev/stevedore/internal/api/webhooks"
)

// registerWebhooks defines the registry webhook settings of the dispatcher
// role (internal/api/webhooks). The secrets come from the environment only
// (STEVEDORE_WEBHOOK_<SOURCE>_TOKEN, STEVEDORE_WEBHOOK_GHCR_SECRET): a flag
// would show them in the process list and in --help.
func (o *Options) registerWebhooks(fs *flag.FlagSet) {
	o.Webhooks.Secrets = map[webhooks.Source]string{}
	for _, src := range webhooks.Sources() {
		if v := os.Getenv(src.SecretEnv()); v != "" {
			o.Webhooks.Secrets[src] = v
		}
	}
	if v := os.Getenv("STEVEDORE_WEBHOOK_REGISTRIES"); v != "" {
		if err := o.Webhooks.Registries.Set(v); err != nil {
			o.envErrs = append(o.envErrs, fmt.Errorf("environment STEVEDORE_WEBHOOK_REGISTRIES: %w", err))
		}
	}
	fs.Var(&o.Webhooks.Registries, "webhook-registries", "registries webhook events may name, comma-separated host[:port], or event-host=pull-host when the events name a registry by another address than the one to pull from (env STEVEDORE_WEBHOOK_REGISTRIES)")
	fs.StringVar(&o.Webhooks.ZotRegistry, "webhook-zot-registry", os.Getenv("STEVEDORE_WEBHOOK_ZOT_REGISTRY"), "host[:port] of the zot registry whose events come to /webhooks/zot (env STEVEDORE_WEBHOOK_ZOT_REGISTRY; empty: the host of the events' source URL)")
	fs.Int64Var(&o.Webhooks.MaxBodySize, "webhook-max-body", int64(o.envInt("STEVEDORE_WEBHOOK_MAX_BODY", webhooks.DefaultMaxBodySize)), "largest webhook request body in bytes (env STEVEDORE_WEBHOOK_MAX_BODY)")
	fs.DurationVar(&o.Webhooks.ResolveTimeout, "webhook-resolve-timeout", o.envDuration("STEVEDORE_WEBHOOK_RESOLVE_TIMEOUT", webhooks.DefaultResolveTimeout), "time a webhook request may spend looking images up in the registry before they are left to the retries (env STEVEDORE_WEBHOOK_RESOLVE_TIMEOUT)")
	fs.DurationVar(&o.Webhooks.RetryBase, "webhook-retry-base", o.envDuration("STEVEDORE_WEBHOOK_RETRY_BASE", webhooks.DefaultRetryBase), "first delay before a failed webhook lookup is retried, doubled per attempt (env STEVEDORE_WEBHOOK_RETRY_BASE)")
	fs.DurationVar(&o.Webhooks.RetryMax, "webhook-retry-max", o.envDuration("STEVEDORE_WEBHOOK_RETRY_MAX", webhooks.DefaultRetryMax), "longest delay between retries of a webhook lookup (env STEVEDORE_WEBHOOK_RETRY_MAX)")
	fs.IntVar(&o.Webhooks.MaxTargets, "webhook-max-targets", o.envInt("STEVEDORE_WEBHOOK_MAX_TARGETS", webhooks.DefaultMaxTargets), "images one event may name; an event naming more is refused with 413 (env STEVEDORE_WEBHOOK_MAX_TARGETS)")
	fs.IntVar(&o.Webhooks.ResolveConcurrency, "webhook-resolve-concurrency", o.envInt("STEVEDORE_WEBHOOK_RESOLVE_CONCURRENCY", webhooks.DefaultResolveConcurrency), "registry lookups one webhook request makes at once (env STEVEDORE_WEBHOOK_RESOLVE_CONCURRENCY)")
	fs.Float64Var(&o.Webhooks.RetryRate, "webhook-retry-rate", o.envFloat("STEVEDORE_WEBHOOK_RETRY_RATE", webhooks.DefaultRetryRate), "background retries of failed webhook lookups per second, per registry (made by the dispatcher that leads the background work) (env STEVEDORE_WEBHOOK_RETRY_RATE)")
	fs.IntVar(&o.Webhooks.MaxAttempts, "webhook-max-attempts", o.envInt("STEVEDORE_WEBHOOK_MAX_ATTEMPTS", webhooks.DefaultMaxAttempts), "attempts of a webhook lookup before it is given up (env STEVEDORE_WEBHOOK_MAX_ATTEMPTS)")
}

// validateWebhooks checks the webhook settings of the dispatcher role.
func (o *Options) validateWebhooks() []error {
	if !o.Dispatcher {
		return nil
	}
	errs := o.Webhooks.Validate()
	if o.Webhooks.MaxBodySize < 1024 || o.Webhooks.MaxBodySize > 64<<20 {
		errs = append(errs, fmt.Errorf("--webhook-max-body: %d: want 1024 to %d bytes", o.Webhooks.MaxBodySize, 64<<20))
	}
	if o.Webhooks.ResolveTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--webhook-resolve-timeout: %s: want at least 100ms", o.Webhooks.ResolveTimeout))
	}
	if o.Webhooks.RetryBase < 100*time.Millisecond || o.Webhooks.RetryMax < o.Webhooks.RetryBase {
		errs = append(errs, fmt.Errorf("--webhook-retry-base %s, --webhook-retry-max %s: want a base of at least 100ms and a max not below it", o.Webhooks.RetryBase, o.Webhooks.RetryMax))
	}
	if o.Webhooks.MaxTargets < 1 || o.Webhooks.MaxTargets > 10000 {
		errs = append(errs, fmt.Errorf("--webhook-max-targets: %d: want 1 to 10000", o.Webhooks.MaxTargets))
	}
	if o.Webhooks.ResolveConcurrency < 1 || o.Webhooks.ResolveConcurrency > 256 {
		errs = append(errs, fmt.Errorf("--webhook-resolve-concurrency: %d: want 1 to 256", o.Webhooks.ResolveConcurrency))
	}
	if !(o.Webhooks.RetryRate >= 0.01 && o.Webhooks.RetryRate <= 10000) {
		errs = append(errs, fmt.Errorf("--webhook-retry-rate: %g: want 0.01 to 10000 a second", o.Webhooks.RetryRate))
	}
	if o.Webhooks.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("--webhook-max-attempts: %d: want at least 1", o.Webhooks.MaxAttempts))
	}
	return errs
}

// envFloat reads a number default from the environment; a malformed value
// is kept for Validate to report.
func (o *Options) envFloat(k string, def float64) float64 {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Errorf("environment %s=%q: not a number", k, v))
		return def
	}
	return f
}
