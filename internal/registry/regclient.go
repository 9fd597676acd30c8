// Package registry is Stevedore's registry client: the HTTP transport and
// the credentials that every registry request of a process goes through
// (layer fetches in internal/layer/fetch; manifests, image indexes and the
// webhooks' tag lookups in internal/registry/resolve). On top of
// go-containerregistry's authentication it adds what a fleet of workers
// behind a busy registry needs:
//
//   - credentials per registry from Stevedore's own configuration (user
//     name and password, or a registry token), before the Docker config and
//     its credential helpers (authn.DefaultKeychain);
//   - a limit on the requests in flight to each registry (a download holds
//     its slot until its body is closed);
//   - retries with exponential backoff and jitter on 5xx answers and
//     connection errors;
//   - on 429 (and on a 503 that says when to come back) the Retry-After
//     header is honoured, in seconds or as an HTTP date. go-containerregistry
//     does not read it. The wait is a gate shared by every request of the
//     process to that registry: while one fetch is told to back off, the
//     others do not hammer the registry either;
//   - plain-HTTP registries, and mirrors tried first for blobs, per host;
//   - one host normaliser (NormalizeHost) and an allowlist of registries
//     (see Allowlist), enforced by the dispatcher on what it accepts, by the
//     fetcher on what it downloads and by the resolver on what it looks up
//     (Client.CheckAllowed);
//   - redirects checked hop by hop: a hop to another host must be an
//     allowed registry or a redirect host (see RedirectHosts) when there
//     is an allowlist, gets none of the headers (credentials included) the
//     request was given, and may not connect to a loopback, private,
//     link-local or metadata address unless its host is explicitly
//     allowed; the address is checked at dial time, after resolution, so
//     a name that resolves to 127.0.0.1 is caught too.
package registry

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Defaults of Config's zero values.
const (
	DefaultConcurrency   = 8
	DefaultMaxAttempts   = 5
	DefaultRetryBase     = 500 * time.Millisecond
	DefaultRetryMax      = 30 * time.Second
	DefaultMaxRetryAfter = time.Minute
	// DefaultResponseHeaderTimeout is Config.ResponseHeaderTimeout's
	// default.
	DefaultResponseHeaderTimeout = 30 * time.Second
)

// Config configures a Client. Zero values take the defaults noted.
type Config struct {
	// Hosts holds per-registry settings, keyed by host[:port] as image
	// references name registries ("docker.io" is Docker Hub).
	Hosts map[string]Host
	// Allowlist lists the registries requests may name; empty allows
	// every registry.
	Allowlist Allowlist
	// Concurrency is how many requests may be in flight to one registry
	// at once, unless its Host says otherwise (default 8).
	Concurrency int
	// MaxAttempts is how many times one request is sent at most: the
	// first time and the retries after a 5xx, a 429 or a connection error
	// (default 5).
	MaxAttempts int
	// RetryBase is the first backoff delay, doubled after each attempt up
	// to RetryMax (defaults 500ms and 30s), with up to 20% jitter added.
	RetryBase, RetryMax time.Duration
	// ResponseHeaderTimeout bounds the wait for a registry's answer to one
	// attempt of a request, once it is sent (default 30s); a timeout is
	// retried like a connection error. It applies to the default base
	// transport only.
	ResponseHeaderTimeout time.Duration
	// RedirectHosts are the hosts (object storage) registries may redirect
	// downloads to besides the allowed registries; see RedirectHosts.
	RedirectHosts RedirectHosts
	// MaxRetryAfter is the longest wait the client accepts from a
	// registry's Retry-After (default 1m). When a registry asks for more,
	// its requests fail at once with ErrThrottled (a transient error: the
	// job is retried later) until the asked time has passed.
	MaxRetryAfter time.Duration
}

// Host is one registry's settings. Credentials are never logged.
type Host struct {
	// Username and Password are basic credentials, exchanged for a
	// bearer token when the registry asks for one.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Token is a registry bearer token, sent as is.
	Token string `json:"token,omitempty"`
	// Mirrors are base URLs (https://mirror.example.com) of registries
	// holding copies of this one's blobs, tried in order before it. A
	// mirror that fails or lacks the blob is skipped.
	Mirrors []string `json:"mirrors,omitempty"`
	// PlainHTTP makes every request to the registry plain HTTP.
	PlainHTTP bool `json:"plain_http,omitempty"`
	// Concurrency overrides Config.Concurrency for this registry.
	Concurrency int `json:"concurrency,omitempty"`
}

func (h Host) hasAuth() bool { return h.Username != "" || h.Password != "" || h.Token != "" }

// WithDefaults returns c with its zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = max(DefaultRetryMax, c.RetryBase)
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if c.ResponseHeaderTimeout <= 0 {
		c.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	return c
}

// Validate checks the settings; each error names the host and the field.
func (c Config) Validate() error {
	var errs []error
	for _, h := range slices.Sorted(maps.Keys(c.Hosts)) {
		s := c.Hosts[h]
		if err := validHost(h); err != nil {
			errs = append(errs, fmt.Errorf("registry %q: %w", h, err))
		}
		if s.Token != "" && (s.Username != "" || s.Password != "") {
			errs = append(errs, fmt.Errorf("registry %q: give a token or a username and password, not both", h))
		}
		if (s.Username == "") != (s.Password == "") {
			errs = append(errs, fmt.Errorf("registry %q: a username needs a password and a password a username", h))
		}
		if s.Concurrency < 0 {
			errs = append(errs, fmt.Errorf("registry %q: concurrency %d: want 0 (the default) or more", h, s.Concurrency))
		}
		for i, m := range s.Mirrors {
			if _, err := parseMirror(m); err != nil {
				errs = append(errs, fmt.Errorf("registry %q: mirrors[%d]: %w", h, i, err))
			}
		}
	}
	for _, h := range c.Allowlist {
		if err := validHost(h); err != nil {
			errs = append(errs, fmt.Errorf("allowlist entry %q: %w", h, err))
		}
	}
	for _, h := range c.RedirectHosts {
		if err := validRedirectHost(h); err != nil {
			errs = append(errs, fmt.Errorf("redirect host %q: %w", h, err))
		}
	}
	if c.Concurrency < 0 || c.MaxAttempts < 0 || c.RetryBase < 0 || c.RetryMax < 0 || c.MaxRetryAfter < 0 {
		errs = append(errs, errors.New("registry client: concurrency, attempts and delays must not be negative"))
	}
	return errors.Join(errs...)
}

func parseMirror(m string) (*url.URL, error) {
	u, err := url.Parse(m)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("%q is not a base URL such as https://mirror.example.com", m)
	}
	u.Path = ""
	return u, nil
}

// ErrThrottled is returned (wrapped) for a request to a registry that asked
// the client, with Retry-After, to wait longer than Config.MaxRetryAfter. It
// is transient.
var ErrThrottled = errors.New("registry asked to wait")

// Client holds the registry settings of one process, and the state shared
// by all of its requests: the per-registry request slots and the gates set
// by Retry-After. Every request of a process to a registry goes through
// one Client (or a view of it, see WithMaxAttempts): layer blobs
// (internal/layer/fetch), manifests and image indexes, and the tag lookups
// of the webhooks (internal/registry/resolve).
type Client struct {
	cfg   Config
	base  http.RoundTripper
	log   *slog.Logger
	hosts map[string]Host // canonical host -> settings

	shared *shared

	bytes   metric.Int64Counter
	retries metric.Int64Counter
}

// shared is the state of a Client that its views share.
type shared struct {
	mu    sync.Mutex
	state map[string]*hostState
}

// Option configures a Client.
type Option func(*options)

type options struct {
	base http.RoundTripper
	log  *slog.Logger
	mp   metric.MeterProvider
}

// WithBaseTransport sets the transport requests are finally sent with
// (default: a clone of http.DefaultTransport whose dialer refuses private
// addresses to redirect hops, traced with otelhttp). A transport given
// here dials as it likes: redirects are still checked against the
// allowlist and stripped of headers, but addresses are not.
func WithBaseTransport(rt http.RoundTripper) Option { return func(o *options) { o.base = rt } }

// WithLogger sets the logger for throttling and retries (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMeterProvider sets where the client's metrics go (default: the
// global provider): stevedore.registry.bytes (response body bytes read,
// by registry and kind: blob, manifest, other) and
// stevedore.registry.retries (by registry and reason).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.mp = mp } }

// New returns a Client for cfg (its zero values take the defaults; call
// Config.Validate first: New skips invalid mirrors).
func New(cfg Config, opts ...Option) *Client {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.mp == nil {
		o.mp = otel.GetMeterProvider()
	}
	c := &Client{cfg: cfg.WithDefaults(), log: o.log, hosts: map[string]Host{}, shared: &shared{state: map[string]*hostState{}}}
	for h, s := range cfg.Hosts {
		c.hosts[CanonicalHost(h)] = s
	}
	if o.base == nil {
		o.base = otelhttp.NewTransport(c.baseTransport())
	}
	c.base = o.base
	meter := o.mp.Meter("github.com/stevedore-dev/stevedore/internal/registry")
	// Instrument creation only fails on an invalid name; the names are
	// constants, and a nil-safe no-op is used then.
	c.bytes, _ = meter.Int64Counter("stevedore.registry.bytes", metric.WithUnit("By"),
		metric.WithDescription("Response body bytes read from registries, by registry and kind (blob, manifest, other)"))
	c.retries, _ = meter.Int64Counter("stevedore.registry.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Registry requests sent again, by registry and reason (HTTP status or connection)"))
	return c
}

// WithMaxAttempts returns a view of c whose requests are sent at most n
// times (n < 1: once) and that shares everything else with c: the settings,
// the credentials, and the per-registry request slots and Retry-After
// gates. A caller that retries on its own schedule (the webhooks' tag
// lookups, stored and retried later) uses one attempt and still waits
// while a registry has asked, through any request of the process, to wait.
func (c *Client) WithMaxAttempts(n int) *Client {
	v := *c
	v.cfg.MaxAttempts = max(n, 1)
	return &v
}

// Config returns the client's settings, defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Allowed reports whether requests may name registry host (host[:port]).
func (c *Client) Allowed(host string) bool { return c.cfg.Allowlist.Allows(host) }

// CheckAllowed returns nil when requests may name registry host, and
// otherwise an error wrapping ErrNotAllowed that names the host and the
// allowlist. The client's users check the registry a request names with
// it before they send anything (the transport checks redirects and token
// realms, which may lead elsewhere).
func (c *Client) CheckAllowed(host string) error {
	if c.Allowed(host) {
		return nil
	}
	return fmt.Errorf("registry %s is not in the allowlist (%s): %w", host, c.cfg.Allowlist, ErrNotAllowed)
}

// PlainHTTP reports whether the registry is reached over plain HTTP.
func (c *Client) PlainHTTP(host string) bool { return c.hosts[CanonicalHost(host)].PlainHTTP }

// Mirrors returns the base URLs of the mirrors of a registry, in order.
func (c *Client) Mirrors(host string) []*url.URL {
	var out []*url.URL
	for _, m := range c.hosts[CanonicalHost(host)].Mirrors {
		if u, err := parseMirror(m); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// Keychain returns the credentials of Stevedore's configuration for the
// registries that have some, else those of authn.DefaultKeychain (the
// Docker config and its credential helpers).
func (c *Client) Keychain() authn.Keychain {
	return authn.NewMultiKeychain(hostKeychain(c.hosts), authn.DefaultKeychain)
}

// Transport returns the client's transport: plain HTTP where configured,
// per-registry request slots, the Retry-After gates and the retries. Use it
// as the base of go-containerregistry's authenticating transport.
func (c *Client) Transport() http.RoundTripper { return &roundTripper{c: c} }

// RemoteOptions are the options for go-containerregistry's remote package
// that make it use this client: its transport and keychain, and none of
// remote's own retries (the transport retries, honouring Retry-After).
func (c *Client) RemoteOptions() []remote.Option {
	return []remote.Option{
		remote.WithTransport(c.Transport()),
		remote.WithAuthFromKeychain(c.Keychain()),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
}

// hostKeychain serves the credentials configured per registry.
type hostKeychain map[string]Host

// Resolve implements authn.Keychain.
func (k hostKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	h, ok := k[CanonicalHost(r.RegistryStr())]
	if !ok || !h.hasAuth() {
		return authn.Anonymous, nil
	}
	if h.Token != "" {
		return &authn.Bearer{Token: h.Token}, nil
	}
	return &authn.Basic{Username: h.Username, Password: h.Password}, nil
}

// hostState is what the requests of a process to one registry share.
type hostState struct {
	slots chan struct{}

	mu        sync.Mutex
	notBefore time.Time
}

func (c *Client) host(h string) *hostState {
	c.shared.mu.Lock()
	defer c.shared.mu.Unlock()
	s, ok := c.shared.state[h]
	if !ok {
		n := c.cfg.Concurrency
		if hc := c.hosts[h].Concurrency; hc > 0 {
			n = hc
		}
		s = &hostState{slots: make(chan struct{}, n)}
		c.shared.state[h] = s
	}
	return s
}

// backoff is the delay before attempt+1, after attempt failed.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.RetryBase << min(attempt-1, 20)
	if d > c.cfg.RetryMax || d <= 0 {
		d = c.cfg.RetryMax
	}
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}
