// Package fetch opens layer blobs from registries, or from the local blob
// cache.
//
// A layer's URI is usually a registry blob URL (scheme://host/v2/<repo>/blobs/<digest>,
// as Clair's manifests carry). For those, authentication is
// go-containerregistry's: the registry's challenge is answered with
// credentials from the registry client's keychain (Stevedore's own per-
// registry settings, then the Docker config and credential helpers) unless
// the layer carries its own Authorization header, which is then sent as
// given. Other http(s) URIs are fetched with the layer's headers. Every
// request goes through the registry client (internal/registry): per-registry
// request limits, retries, Retry-After, plain HTTP. Mirrors of the layer's
// registry are tried first (not for a layer with its own Authorization
// header, which is meant for its registry only).
//
// With a blob cache (internal/layer/blobcache), a cached layer is read from disk and
// verified against its digest as it streams; a layer fetched from a
// registry fills the cache as it streams to the reader. A cached copy that
// does not match its digest makes the read fail with ErrCacheCorrupt, after
// the copy has been removed: open the layer again to fetch it from its
// registry.
//
// Open verifies nothing itself otherwise: the layer reader hashes the bytes
// as they stream (see internal/layer), so that a layer is read once. Both
// checks are internal/layer/verify's.
//
// The body Open returns is read ahead on a goroutine of its own (up to 1 MiB
// ahead), so that fetching it (system calls, the blob cache's copy and
// hashing, or a cached copy's verification) overlaps with decompressing it
// on the reader's goroutine.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/stevedore-dev/stevedore/internal/layer/blobcache"
	"github.com/stevedore-dev/stevedore/internal/layer/verify"
	"github.com/stevedore-dev/stevedore/internal/redact"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/report"
)

// ErrPermanent marks a fetch error that will not go away by retrying (the
// blob does not exist, access is denied, the URI is wrong, the registry is
// not allowed).
var ErrPermanent = errors.New("permanent fetch error")

// ErrCacheCorrupt is wrapped by the read error of a layer served from the
// blob cache whose bytes did not match its digest. The cached copy is gone
// by then: opening the layer again fetches it from its registry.
var ErrCacheCorrupt = blobcache.ErrCorrupt

// Fetcher opens layer blobs.
type Fetcher struct {
	keychain authn.Keychain
	client   *registry.Client
	cache    *blobcache.Cache
	log      *slog.Logger
	mp       metric.MeterProvider

	hits, misses, corrupt metric.Int64Counter

	stall StallLimits

	// transports are the authenticated transports of the repositories
	// layers were fetched from, reused for registry.AuthTTL so that
	// fetching the layers of an image does one auth handshake, not one per
	// layer.
	transports registry.AuthCache[http.RoundTripper]
}

// Option configures a Fetcher.
type Option func(*Fetcher)

// WithClient sets the registry client every request goes through, and
// whose keychain gives the credentials (default: registry.New with its
// defaults).
func WithClient(c *registry.Client) Option { return func(f *Fetcher) { f.client = c } }

// WithCache serves layers from, and keeps fetched layers in, a blob cache.
func WithCache(c *blobcache.Cache) Option { return func(f *Fetcher) { f.cache = c } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(f *Fetcher) { f.log = l } }

// WithMeterProvider sets where the fetcher's metrics go (default: the
// global provider): stevedore.blobcache.hits, stevedore.blobcache.misses
// and stevedore.blobcache.verify_failures.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(f *Fetcher) { f.mp = mp } }

// New returns a Fetcher.
func New(opts ...Option) *Fetcher {
	f := &Fetcher{}
	for _, o := range opts {
		o(f)
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.stall = f.stall.withDefaults()
	if f.mp == nil {
		f.mp = otel.GetMeterProvider()
	}
	if f.client == nil {
		f.client = registry.New(registry.Config{}, registry.WithLogger(f.log), registry.WithMeterProvider(f.mp))
	}
	f.keychain = f.client.Keychain()
	meter := f.mp.Meter("github.com/stevedore-dev/stevedore/internal/layer/fetch")
	f.hits, _ = meter.Int64Counter("stevedore.blobcache.hits", metric.WithUnit("{layer}"),
		metric.WithDescription("Layers opened from the local blob cache"))
	f.misses, _ = meter.Int64Counter("stevedore.blobcache.misses", metric.WithUnit("{layer}"),
		metric.WithDescription("Layers not in the local blob cache, fetched from a registry"))
	f.corrupt, _ = meter.Int64Counter("stevedore.blobcache.verify_failures", metric.WithUnit("{layer}"),
		metric.WithDescription("Cached layers whose bytes did not match their digest (removed and fetched again)"))
	return f
}

// Cache returns the fetcher's blob cache (nil without one).
func (f *Fetcher) Cache() *blobcache.Cache { return f.cache }

var blobPath = regexp.MustCompile(`^/v2/(.+)/blobs/((?:sha256|sha512):[a-f0-9]+)$`)

// Open starts the download of layer l, or opens its cached copy, and
// returns its body. Its errors, and those of the body's reads, show no
// secret: the URI's user information and query values, and the values of
// the layer's headers, are redacted (internal/redact).
func (f *Fetcher) Open(ctx context.Context, l *report.Layer) (rc io.ReadCloser, err error) {
	secrets := redact.Secrets(l.URI, l.Headers)
	defer func() {
		if err != nil {
			err = redact.Error(err, secrets...)
		} else if rc != nil {
			rc = &redactedBody{ReadCloser: rc, secrets: secrets}
		}
	}()
	shown := redact.URL(l.URI)
	u, err := url.Parse(l.URI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fetch layer %s: URI %q is not an absolute http(s) URL: %w", l.Hash, shown, ErrPermanent)
	}
	if !f.client.Allowed(u.Host) {
		return nil, fmt.Errorf("fetch layer %s: registry %s is not in the allowlist (%s): %w", l.Hash, u.Host, f.client.Config().Allowlist.String(), ErrPermanent)
	}
	m := blobPath.FindStringSubmatch(u.Path)
	if m != nil && m[2] != string(l.Hash) {
		return nil, fmt.Errorf("fetch layer %s: URI %q names blob %s: %w", l.Hash, shown, m[2], ErrPermanent)
	}
	if m != nil {
		if err := registry.ValidateRepository(m[1]); err != nil {
			return nil, fmt.Errorf("fetch layer %s: URI %q: %w: %w", l.Hash, shown, err, ErrPermanent)
		}
	}
	if f.cache != nil {
		if rc, ok := f.cache.Get(l.Hash); ok {
			f.hits.Add(ctx, 1)
			return newReadahead(&cached{ReadCloser: rc, ctx: context.WithoutCancel(ctx), corrupt: f.corrupt}), nil
		}
		f.misses.Add(ctx, 1)
	}
	body, err := f.openRemote(ctx, l, u, m)
	if err != nil {
		return nil, err
	}
	if f.cache != nil {
		return newReadahead(f.cache.Tee(l.Hash, l.Size, body)), nil
	}
	return newReadahead(body), nil
}

// openRemote fetches l from a mirror of its registry, or from the registry.
func (f *Fetcher) openRemote(ctx context.Context, l *report.Layer, u *url.URL, m []string) (io.ReadCloser, error) {
	if m == nil {
		return f.get(ctx, l, u, "", true)
	}
	if l.Headers.Get("Authorization") == "" {
		for _, mirror := range f.client.Mirrors(u.Host) {
			mu := *u
			mu.Scheme, mu.Host = mirror.Scheme, mirror.Host
			body, err := f.get(ctx, l, &mu, m[1], false)
			if err == nil {
				return body, nil
			}
			if ctx.Err() != nil {
				return nil, err
			}
			f.log.InfoContext(ctx, "mirror could not serve a layer; trying the next source", "layer", l.Hash, "mirror", mirror.Host,
				"error", redact.Error(err, redact.Secrets(l.URI, l.Headers)...))
		}
	}
	repo := m[1]
	if l.Headers.Get("Authorization") != "" {
		repo = "" // the layer's own credentials, as given
	}
	return f.get(ctx, l, u, repo, true)
}

// get sends the GET of l to u: authenticated for repo when repo is set,
// with the layer's headers when headers is set.
func (f *Fetcher) get(ctx context.Context, l *report.Layer, u *url.URL, repo string, headers bool) (io.ReadCloser, error) {
	rt := f.client.Transport()
	if repo != "" {
		var err error
		rt, err = f.registryTransport(ctx, u, repo)
		if err != nil {
			return nil, fmt.Errorf("fetch layer %s from %s: %w", l.Hash, u.Host, err)
		}
	}
	// The watchdog fails a download whose body stalls, so that a registry
	// dripping bytes does not hold a worker.
	wctx, wd := watch(ctx, f.stall, fmt.Sprintf("fetch layer %s from %s", l.Hash, u.Host))
	req, err := http.NewRequestWithContext(wctx, http.MethodGet, u.String(), nil)
	if err != nil {
		wd.done()
		return nil, fmt.Errorf("fetch layer %s: %w: %w", l.Hash, err, ErrPermanent)
	}
	if headers {
		for k, vs := range l.Headers {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		wd.done()
		if serr := stalled(wctx); serr != nil {
			return nil, serr
		}
		err = fmt.Errorf("fetch layer %s from %s: %w", l.Hash, u.Host, err)
		if errors.Is(err, registry.ErrInvalidName) || errors.Is(err, registry.ErrNotAllowed) {
			err = fmt.Errorf("%w: %w", err, ErrPermanent)
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer wd.done()
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("fetch layer %s from %s: HTTP %s: %q", l.Hash, u.Host, resp.Status, msg)
		if permanentStatus(resp.StatusCode) {
			err = fmt.Errorf("%w: %w", err, ErrPermanent)
		}
		return nil, err
	}
	wd.start()
	return &watchedBody{ReadCloser: resp.Body, ctx: wctx, w: wd}, nil
}

func permanentStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return false
	case code >= 400 && code < 500:
		return true
	}
	return false
}

// registryTransport returns a transport authenticated for pulling from
// repository repoPath of u's registry: one made less than registry.AuthTTL
// ago, or a new one.
func (f *Fetcher) registryTransport(ctx context.Context, u *url.URL, repoPath string) (http.RoundTripper, error) {
	key := u.Scheme + "://" + u.Host + "/" + repoPath
	if rt, ok := f.transports.Get(key); ok {
		return rt, nil
	}
	rt, err := f.newRegistryTransport(ctx, u, repoPath)
	if err != nil {
		return nil, err
	}
	f.transports.Put(key, rt)
	return rt, nil
}

// newRegistryTransport answers the registry's auth challenge for pulling
// repo.
func (f *Fetcher) newRegistryTransport(ctx context.Context, u *url.URL, repoPath string) (http.RoundTripper, error) {
	var opts []name.Option
	if u.Scheme == "http" || f.client.PlainHTTP(u.Host) {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(u.Host+"/"+repoPath, opts...)
	if err != nil {
		return nil, fmt.Errorf("repository in URI: %w: %w", err, ErrPermanent)
	}
	auth, err := authn.Resolve(ctx, f.keychain, repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo, err)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, f.client.Transport(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && permanentStatus(te.StatusCode) || errors.Is(err, registry.ErrNotAllowed) || errors.Is(err, registry.ErrInvalidName) {
			return nil, fmt.Errorf("%w: %w", err, ErrPermanent)
		}
		return nil, err
	}
	return rt, nil
}

// cached is a layer read from the blob cache: it counts a verification
// failure once.
type cached struct {
	io.ReadCloser
	ctx     context.Context
	corrupt metric.Int64Counter
	once    sync.Once
}

// VerifiedDigest passes on the cache reader's: it checks the bytes it
// delivers (verify.Verified, layer.Verifier), so layer.Read need not hash
// them again.
func (c *cached) VerifiedDigest() report.Digest {
	if v, ok := c.ReadCloser.(verify.Verified); ok {
		return v.VerifiedDigest()
	}
	return ""
}

func (c *cached) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err != nil && errors.Is(err, ErrCacheCorrupt) {
		c.once.Do(func() { c.corrupt.Add(c.ctx, 1) })
	}
	return n, err
}

// redactedBody redacts the errors of a layer body's reads.
type redactedBody struct {
	io.ReadCloser
	secrets []string
}

// VerifiedDigest passes on the wrapped reader's (see cached).
func (b *redactedBody) VerifiedDigest() report.Digest {
	if v, ok := b.ReadCloser.(verify.Verified); ok {
		return v.VerifiedDigest()
	}
	return ""
}

func (b *redactedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = redact.Error(err, b.secrets...)
	}
	return n, err
}
