package webhooks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
)

// Source is a kind of registry that sends push events, and the last element
// of its endpoint's path (/webhooks/<source>).
type Source string

// The sources Stevedore accepts events from.
const (
	// Distribution is CNCF Distribution (registry:2 and registry:3) and
	// GitLab's container registry, a fork of it: notification envelopes,
	// authenticated by a token in the Authorization header.
	Distribution Source = "distribution"
	// Harbor is Harbor's webhook, Default or CloudEvents payload format,
	// authenticated by its "Auth Header".
	Harbor Source = "harbor"
	// Quay is Quay's repository-push webhook notification, authenticated by
	// basic credentials in the webhook URL.
	Quay Source = "quay"
	// Zot is zot's events extension (CloudEvents, binary mode) with an http
	// sink, authenticated by its credentials (basic) or token (bearer).
	Zot Source = "zot"
	// GHCR is GitHub's "package" webhook event for container packages,
	// signed with the webhook's secret (X-Hub-Signature-256).
	GHCR Source = "ghcr"
)

// Sources lists every source, in the order the README documents them.
func Sources() []Source { return []Source{Distribution, Harbor, Quay, Zot, GHCR} }

// Signed reports whether the source signs its payloads with a shared secret
// (HMAC) instead of sending a token.
func (s Source) Signed() bool { return s == GHCR }

// SecretEnv is the environment variable that holds the source's secret:
// STEVEDORE_WEBHOOK_<SOURCE>_TOKEN, or _SECRET for a source that signs.
func (s Source) SecretEnv() string {
	kind := "TOKEN"
	if s.Signed() {
		kind = "SECRET"
	}
	return "STEVEDORE_WEBHOOK_" + strings.ToUpper(string(s)) + "_" + kind
}

// Defaults of Config's zero values.
const (
	DefaultMaxBodySize    = 1 << 20
	DefaultResolveTimeout = 10 * time.Second
	DefaultRetryBase      = 30 * time.Second
	DefaultRetryMax       = time.Hour
	DefaultMaxAttempts    = 20
	DefaultPollInterval   = 5 * time.Second
	// DefaultMaxTargets bounds the images one event may name.
	DefaultMaxTargets = 100
	// DefaultResolveConcurrency bounds the lookups one event makes at once.
	DefaultResolveConcurrency = 8
	// DefaultRetryRate is the background lookups per second per registry.
	DefaultRetryRate = 5
	// MinSecretLength is the shortest secret Validate accepts.
	MinSecretLength = 16
)

// Config configures the webhook endpoints. Zero values take the defaults
// noted; a source without a secret is disabled.
type Config struct {
	// Secrets holds each source's secret: the token that Distribution,
	// Harbor, Quay and Zot send in the Authorization header (as a bearer
	// token, the password of basic credentials, or the whole header value
	// for Harbor's "Auth Header"), or the HMAC secret GitHub signs with.
	// Never logged.
	Secrets map[Source]string
	// Registries are the registries events may name, with the host to pull
	// from when it differs from the one the events name.
	Registries Registries
	// ZotRegistry is the host of the zot registry whose events arrive (zot's
	// events do not name one unless its "source" is set to a URL).
	ZotRegistry string
	// MaxBodySize bounds a request body in bytes (default 1 MiB).
	MaxBodySize int64
	// ResolveTimeout bounds the registry lookups one request makes
	// (default 10s); what does not finish in time is retried later.
	ResolveTimeout time.Duration
	// RetryBase is the delay before the first retry of a failed lookup,
	// doubled after each failure up to RetryMax (defaults 30s and 1h).
	RetryBase, RetryMax time.Duration
	// MaxAttempts is the number of lookups after which a pending
	// reference is given up (default 20); the row stays for inspection.
	MaxAttempts int
	// MaxTargets bounds the distinct images one event may name (default
	// 100): an event naming more is refused whole with 413, nothing
	// looked up or stored.
	MaxTargets int
	// ResolveConcurrency bounds the registry lookups one request makes at
	// once (default 8), all under one ResolveTimeout.
	ResolveConcurrency int
	// RetryRate bounds the background retries of stored lookups, per
	// registry and per process, in lookups per second (default 5; a
	// lookup is a tag HEAD, and a GET when the HEAD fails, then the
	// manifest's).
	RetryRate float64
	// PollInterval is how often the retry loop looks for due rows
	// (default 5s, or RetryBase when smaller).
	PollInterval time.Duration
	// Tags looks up the digests of the tags events name (Quay's), through
	// the process's registry client: give it a resolve.Resolver on the
	// client's one-attempt view (registry.Client.WithMaxAttempts(1)), so
	// that a failed lookup is stored and retried on the webhooks' own
	// schedule while the registry's credentials, limits, Retry-After gates
	// and allowlist apply as for every other request (default:
	// resolve.New(), a client with the default settings).
	Tags TagResolver
}

// TagResolver looks up the digest a tag reference points to;
// *resolve.Resolver is one. Its errors wrap resolve.ErrInvalid when asking
// again cannot help (no such tag, a registry not allowed).
type TagResolver interface {
	Digest(ctx context.Context, ref string) (string, error)
}

// Enabled reports whether src has a secret, that is, whether its endpoint
// accepts events.
func (c *Config) Enabled(src Source) bool { return c.Secrets[src] != "" }

// AnyEnabled reports whether some source is enabled.
func (c *Config) AnyEnabled() bool {
	for _, s := range Sources() {
		if c.Enabled(s) {
			return true
		}
	}
	return false
}

// Validate checks the secrets and the registries; the errors name the
// environment variable or flag (see internal/config). Secrets themselves never
// appear in the errors.
func (c *Config) Validate() []error {
	var errs []error
	for src, secret := range c.Secrets {
		if !knownSource(src) {
			errs = append(errs, fmt.Errorf("webhooks: unknown source %q", src))
			continue
		}
		if secret != "" && len(secret) < MinSecretLength {
			errs = append(errs, fmt.Errorf("%s: %d characters, want at least %d (e.g. openssl rand -hex 32)", src.SecretEnv(), len(secret), MinSecretLength))
		}
	}
	if c.AnyEnabled() && c.Registries.Len() == 0 {
		errs = append(errs, fmt.Errorf("--webhook-registries (env STEVEDORE_WEBHOOK_REGISTRIES): required when a webhook source is enabled (%s): the registries events may name, e.g. \"registry.example.com,localhost:5000=registry:5000\"", strings.Join(c.enabledEnvs(), ", ")))
	}
	if c.ZotRegistry != "" {
		if _, err := normalizeHost(c.ZotRegistry); err != nil {
			errs = append(errs, fmt.Errorf("--webhook-zot-registry (env STEVEDORE_WEBHOOK_ZOT_REGISTRY): %w", err))
		}
	}
	return errs
}

func (c *Config) enabledEnvs() []string {
	var out []string
	for _, s := range Sources() {
		if c.Enabled(s) {
			out = append(out, s.SecretEnv())
		}
	}
	return out
}

func knownSource(s Source) bool {
	for _, k := range Sources() {
		if k == s {
			return true
		}
	}
	return false
}

// withDefaults returns c with zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.MaxBodySize == 0 {
		c.MaxBodySize = DefaultMaxBodySize
	}
	if c.ResolveTimeout == 0 {
		c.ResolveTimeout = DefaultResolveTimeout
	}
	if c.RetryBase == 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax == 0 {
		c.RetryMax = max(DefaultRetryMax, c.RetryBase)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxTargets <= 0 {
		c.MaxTargets = DefaultMaxTargets
	}
	if c.ResolveConcurrency <= 0 {
		c.ResolveConcurrency = DefaultResolveConcurrency
	}
	if c.RetryRate <= 0 {
		c.RetryRate = DefaultRetryRate
	}
	if c.PollInterval == 0 {
		c.PollInterval = min(DefaultPollInterval, c.RetryBase)
	}
	if c.Tags == nil {
		c.Tags = resolve.New()
	}
	return c
}

// Registries is the allowlist of registry hosts that events may name, each
// with the host to pull from. It is a flag.Value: Set parses a
// comma-separated list of "host" or "event-host=pull-host" entries, for a
// registry that events name by one address and Stevedore reaches by another
// ("localhost:5000=registry:5000" in compose.yaml). A pull host is also
// accepted as an event host. The zero value allows nothing.
type Registries struct {
	pull map[string]string
}

// ParseRegistries parses a list in the format of Registries.Set.
func ParseRegistries(s string) (Registries, error) {
	var r Registries
	err := r.Set(s)
	return r, err
}

// Set replaces the allowlist with the entries of s (comma-separated "host"
// or "event-host=pull-host"); hosts are host[:port] in the form of
// registry.NormalizeHost (lowercased, Docker Hub's names folded into
// index.docker.io), and an http:// or https:// prefix is dropped.
func (r *Registries) Set(s string) error {
	m := map[string]string{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		ev, pull, mapped := strings.Cut(entry, "=")
		evHost, err := normalizeHost(ev)
		if err != nil {
			return fmt.Errorf("entry %d %q: %w", i+1, entry, err)
		}
		pullHost := evHost
		if mapped {
			if pullHost, err = normalizeHost(pull); err != nil {
				return fmt.Errorf("entry %d %q: pull host: %w", i+1, entry, err)
			}
		}
		if prev, ok := m[evHost]; ok && prev != pullHost {
			return fmt.Errorf("entry %d %q: %s is already mapped to %s", i+1, entry, evHost, prev)
		}
		m[evHost] = pullHost
		if _, ok := m[pullHost]; !ok {
			m[pullHost] = pullHost
		}
	}
	r.pull = m
	return nil
}

// String lists the allowlist in the format Set reads, sorted.
func (r *Registries) String() string {
	if r == nil {
		return ""
	}
	var out []string
	for ev, pull := range r.pull {
		if ev == pull {
			out = append(out, ev)
		} else {
			out = append(out, ev+"="+pull)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Len is the number of event hosts allowed.
func (r *Registries) Len() int { return len(r.pull) }

// PullHost returns the host to pull from for a registry an event names, and
// whether that registry is allowed.
func (r *Registries) PullHost(eventHost string) (string, bool) {
	h, err := normalizeHost(eventHost)
	if err != nil {
		return "", false
	}
	p, ok := r.pull[h]
	return p, ok
}

// normalizeHost reads a registry host as webhook settings and events give
// it: an http:// or https:// prefix and a trailing slash are dropped, and
// the rest is the registry package's one normaliser
// (registry.NormalizeHost: case, Docker Hub's names, what is refused).
func normalizeHost(s string) (string, error) {
	h := strings.TrimSpace(s)
	for _, scheme := range []string{"https://", "http://"} {
		if len(h) >= len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) {
			h = h[len(scheme):]
			break
		}
	}
	return registry.NormalizeHost(strings.TrimSuffix(h, "/"))
}
