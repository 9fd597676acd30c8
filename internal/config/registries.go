package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/registry"
)

// registryFlags holds the raw registry and blob-cache settings until
// Validate turns them into app.Config's Registries and BlobCache*.
type registryFlags struct {
	file      string
	plainHTTP string
	mirrors   []string
	cacheSize byteSize
	// idle, minRate and window are the stall limits of layer downloads.
	idle    time.Duration
	minRate byteSize
	window  time.Duration
}

// DefaultBlobCacheDir is the default blob cache directory: stevedore/blobs
// under the user's cache directory ($XDG_CACHE_HOME or ~/.cache on Linux),
// or under the temporary directory when there is none.
func DefaultBlobCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "stevedore", "blobs")
}

// registerRegistries defines the registry client's settings (dispatcher
// and worker roles) and the blob cache's (worker role). Credentials come
// from the file of --registry-config only, never from a flag.
func (o *Options) registerRegistries(fs *flag.FlagSet, roles Roles) {
	if !roles.Dispatcher && !roles.Worker {
		return
	}
	r := &o.reg
	fs.StringVar(&r.file, "registry-config", os.Getenv("STEVEDORE_REGISTRY_CONFIG"), `JSON file of per-registry settings: {"host[:port]": {"username", "password" | "token", "mirrors": [URL...], "plain_http", "concurrency"}} (env STEVEDORE_REGISTRY_CONFIG); credentials from it come before the Docker config's`)
	if v := os.Getenv("STEVEDORE_REGISTRY_ALLOWLIST"); v != "" {
		if err := o.Registries.Allowlist.Set(v); err != nil {
			o.envErrs = append(o.envErrs, fmt.Errorf("environment STEVEDORE_REGISTRY_ALLOWLIST: %w", err))
		}
	}
	fs.Var(&o.Registries.Allowlist, "registry-allowlist", "registries (host[:port], comma-separated) that index requests and layer URIs may name; others are refused with 403. Empty: every registry is allowed (env STEVEDORE_REGISTRY_ALLOWLIST)")
	if v := os.Getenv("STEVEDORE_REGISTRY_REDIRECT_HOSTS"); v != "" {
		if err := o.Registries.RedirectHosts.Set(v); err != nil {
			o.envErrs = append(o.envErrs, fmt.Errorf("environment STEVEDORE_REGISTRY_REDIRECT_HOSTS: %w", err))
		}
	}
	fs.Var(&o.Registries.RedirectHosts, "registry-redirect-hosts", "hosts (host, host:port or *.domain, comma-separated) that registries may redirect blob downloads to, such as object storage handing out presigned URLs; sent no credentials nor layer headers. Other redirects to another host are refused when there is an allowlist (env STEVEDORE_REGISTRY_REDIRECT_HOSTS)")
	fs.StringVar(&r.plainHTTP, "registry-plain-http", os.Getenv("STEVEDORE_REGISTRY_PLAIN_HTTP"), "registries (host[:port], comma-separated) reached over plain HTTP (env STEVEDORE_REGISTRY_PLAIN_HTTP)")
	if v := os.Getenv("STEVEDORE_REGISTRY_MIRRORS"); v != "" {
		r.mirrors = strings.Split(v, ",")
	}
	fs.Func("registry-mirror", "HOST=URL: a mirror of registry HOST, tried first for its blobs; repeatable, in order (env STEVEDORE_REGISTRY_MIRRORS, comma-separated)", func(v string) error {
		r.mirrors = append(r.mirrors, v)
		return nil
	})
	fs.IntVar(&o.Registries.Concurrency, "registry-concurrency", o.envInt("STEVEDORE_REGISTRY_CONCURRENCY", registry.DefaultConcurrency), "requests in flight to one registry at once, per process (env STEVEDORE_REGISTRY_CONCURRENCY)")
	fs.IntVar(&o.Registries.MaxAttempts, "registry-max-attempts", o.envInt("STEVEDORE_REGISTRY_MAX_ATTEMPTS", registry.DefaultMaxAttempts), "times a registry request is sent at most, retrying 5xx, 429 and connection errors with backoff (env STEVEDORE_REGISTRY_MAX_ATTEMPTS)")
	fs.DurationVar(&o.Registries.MaxRetryAfter, "registry-max-retry-after", o.envDuration("STEVEDORE_REGISTRY_MAX_RETRY_AFTER", registry.DefaultMaxRetryAfter), "longest Retry-After a registry can make requests wait; longer fails them for a later retry of the job (env STEVEDORE_REGISTRY_MAX_RETRY_AFTER)")
	fs.DurationVar(&o.Registries.ResponseHeaderTimeout, "registry-response-timeout", o.envDuration("STEVEDORE_REGISTRY_RESPONSE_TIMEOUT", registry.DefaultResponseHeaderTimeout), "longest wait for a registry's answer to one attempt of a request; a timeout is retried (env STEVEDORE_REGISTRY_RESPONSE_TIMEOUT)")
	if !roles.Worker {
		return
	}
	fs.DurationVar(&r.idle, "blob-idle-timeout", o.envDuration("STEVEDORE_BLOB_IDLE_TIMEOUT", fetch.DefaultStallIdle), "a layer download that receives nothing for this long fails (the job is retried with backoff); 0 disables (env STEVEDORE_BLOB_IDLE_TIMEOUT)")
	r.minRate = fetch.DefaultMinRate
	if v := os.Getenv("STEVEDORE_BLOB_MIN_RATE"); v != "" {
		if err := r.minRate.Set(v); err != nil {
			o.envErrs = append(o.envErrs, fmt.Errorf("environment STEVEDORE_BLOB_MIN_RATE=%q: %w", v, err))
		}
	}
	fs.Var(&r.minRate, "blob-min-rate", "bytes a second (10KiB, 1MiB...) a layer download must average over each --blob-min-rate-window, or it fails (the job is retried with backoff); 0 disables (env STEVEDORE_BLOB_MIN_RATE)")
	fs.DurationVar(&r.window, "blob-min-rate-window", o.envDuration("STEVEDORE_BLOB_MIN_RATE_WINDOW", fetch.DefaultStallWindow), "the window --blob-min-rate is averaged over (env STEVEDORE_BLOB_MIN_RATE_WINDOW)")
	fs.StringVar(&o.BlobCacheDir, "blob-cache-dir", envString("STEVEDORE_BLOB_CACHE_DIR", DefaultBlobCacheDir()), "directory of the local cache of compressed layer blobs, one process per directory (env STEVEDORE_BLOB_CACHE_DIR)")
	r.cacheSize = app.DefaultBlobCacheSize
	if v := os.Getenv("STEVEDORE_BLOB_CACHE_SIZE"); v != "" {
		if err := r.cacheSize.Set(v); err != nil {
			o.envErrs = append(o.envErrs, fmt.Errorf("environment STEVEDORE_BLOB_CACHE_SIZE=%q: %w", v, err))
		}
	}
	fs.Var(&r.cacheSize, "blob-cache-size", "size cap of the blob cache, in bytes or with a unit (500MiB, 10GiB); least recently used blobs are evicted; 0 disables the cache (env STEVEDORE_BLOB_CACHE_SIZE)")
}

// validateRegistries checks the registry and blob-cache settings and fills
// app.Config's from them.
func (o *Options) validateRegistries(roles Roles) []error {
	if !o.Dispatcher && !roles.Worker {
		return nil
	}
	var errs []error
	r := &o.reg
	hosts := map[string]registry.Host{}
	if r.file != "" {
		h, err := registry.LoadHosts(r.file)
		if err != nil {
			errs = append(errs, fmt.Errorf("--registry-config: %w", err))
		} else {
			hosts = h
		}
	}
	for _, h := range strings.Split(r.plainHTTP, ",") {
		if h = strings.TrimSpace(h); h != "" {
			s := hosts[h]
			s.PlainHTTP = true
			hosts[h] = s
		}
	}
	for _, m := range r.mirrors {
		host, u, ok := strings.Cut(strings.TrimSpace(m), "=")
		if !ok || host == "" || u == "" {
			errs = append(errs, fmt.Errorf("--registry-mirror %q: want HOST=URL", m))
			continue
		}
		s := hosts[host]
		s.Mirrors = append(s.Mirrors, u)
		hosts[host] = s
	}
	o.Registries.Hosts = hosts
	if err := o.Registries.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("registry settings: %w", err))
	}
	if o.Registries.Concurrency < 1 || o.Registries.Concurrency > 1024 {
		errs = append(errs, fmt.Errorf("--registry-concurrency: %d: want 1 to 1024", o.Registries.Concurrency))
	}
	if o.Registries.MaxAttempts < 1 || o.Registries.MaxAttempts > 100 {
		errs = append(errs, fmt.Errorf("--registry-max-attempts: %d: want 1 to 100", o.Registries.MaxAttempts))
	}
	if o.Registries.MaxRetryAfter < time.Second {
		errs = append(errs, fmt.Errorf("--registry-max-retry-after: %s: want at least 1s", o.Registries.MaxRetryAfter))
	}
	if o.Registries.ResponseHeaderTimeout < time.Second {
		errs = append(errs, fmt.Errorf("--registry-response-timeout: %s: want at least 1s", o.Registries.ResponseHeaderTimeout))
	}
	if roles.Worker {
		errs = append(errs, o.stallLimits()...)
		o.BlobCacheSize = int64(r.cacheSize)
		if o.BlobCacheSize > 0 && o.BlobCacheDir == "" {
			errs = append(errs, errors.New("--blob-cache-dir: required with a cache size (or --blob-cache-size 0 to disable the cache)"))
		}
	}
	return errs
}

// byteSize is a size in bytes, set from "1048576", "500MiB", "10GiB",
// "2GB"...
type byteSize int64

var units = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
}

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(v string) error {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q: want a number of bytes, optionally with a unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)", v)
	}
	*b = byteSize(n * mult)
	return nil
}

// stallLimits checks the stall limits of layer downloads and fills
// app.Config's (0 on a flag disables its rule: -1 for fetch).
func (o *Options) stallLimits() []error {
	r := &o.reg
	var errs []error
	if r.idle != 0 && r.idle < time.Second {
		errs = append(errs, fmt.Errorf("--blob-idle-timeout: %s: want 0 (disabled) or at least 1s", r.idle))
	}
	if r.minRate > 0 && r.window < time.Second {
		errs = append(errs, fmt.Errorf("--blob-min-rate-window: %s: want at least 1s", r.window))
	}
	o.BlobStall = fetch.StallLimits{Idle: r.idle, MinRate: int64(r.minRate), Window: r.window}
	if r.idle == 0 {
		o.BlobStall.Idle = -1
	}
	if r.minRate == 0 {
		o.BlobStall.MinRate = -1
	}
	return errs
}
