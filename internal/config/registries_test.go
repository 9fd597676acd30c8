package config_test

import (
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/config"
	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/registry"
)

func TestRegistrySettings(t *testing.T) {
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]string{
		"good.json": `{"r.example": {"username": "u", "password": "hunter22"}, "lab:5000": {"concurrency": 2}}`,
		"bad.json":  `{"r.example": {"username": "u", "password": "hunter22", "token": "t"}}`,
	})
	good, bad := files["good.json"], files["bad.json"]
	worker := config.Roles{Worker: true}
	base := []string{"--database-url=postgres://x", "--nats-url=nats://y"}
	for _, tc := range registryCases(dir, good, bad, worker) {
		t.Run(tc.name, func(t *testing.T) { runRegistryCase(t, base, tc) })
	}
	checkBlobCacheSizes(t, worker)
}

// registryCase is a set of flags and environment variables of the
// registry settings, and the substrings of the error they give or a check
// of the options.
type registryCase struct {
	name  string
	roles config.Roles
	env   map[string]string
	args  []string
	want  []string // substrings of the error; none: valid
	check func(t *testing.T, o *config.Options)
}

// registryCases are TestRegistrySettings' cases; good and bad are
// registry configuration files in dir.
func registryCases(dir, good, bad string, worker config.Roles) []registryCase {
	return []registryCase{
		{"defaults", worker, nil, nil, nil, func(t *testing.T, o *config.Options) {
			if o.BlobCacheSize != app.DefaultBlobCacheSize || o.BlobCacheDir != config.DefaultBlobCacheDir() || len(o.Registries.Allowlist) != 0 {
				t.Errorf("cache %d at %q, allowlist %v", o.BlobCacheSize, o.BlobCacheDir, o.Registries.Allowlist)
			}
		}},
		{"everything by flag", worker, nil, []string{"--registry-config=" + good, "--registry-allowlist=r.example,lab:5000",
			"--registry-plain-http=lab:5000", "--registry-mirror=r.example=https://m1.example", "--registry-mirror=r.example=https://m2.example",
			"--blob-cache-size=512MiB", "--blob-cache-dir=/var/cache/x", "--registry-concurrency=3"}, nil, func(t *testing.T, o *config.Options) {
			h := o.Registries.Hosts
			if h["r.example"].Password != "hunter22" || len(h["r.example"].Mirrors) != 2 || !h["lab:5000"].PlainHTTP || h["lab:5000"].Concurrency != 2 {
				t.Errorf("hosts %+v", h)
			}
			if o.BlobCacheSize != 512<<20 || o.BlobCacheDir != "/var/cache/x" || o.Registries.Concurrency != 3 || !o.Registries.Allowlist.Allows("lab:5000") || o.Registries.Allowlist.Allows("x.example") {
				t.Errorf("options %+v", o)
			}
		}},
		{"by environment", worker, map[string]string{"STEVEDORE_REGISTRY_ALLOWLIST": "docker.io", "STEVEDORE_BLOB_CACHE_SIZE": "0",
			"STEVEDORE_REGISTRY_MIRRORS": "docker.io=https://m.example", "STEVEDORE_REGISTRY_CONFIG": good}, nil, nil, func(t *testing.T, o *config.Options) {
			if o.BlobCacheSize != 0 || !o.Registries.Allowlist.Allows("index.docker.io") || len(o.Registries.Hosts["docker.io"].Mirrors) != 1 {
				t.Errorf("options %+v", o)
			}
		}},
		{"dispatcher has the allowlist, not the cache", config.Roles{Dispatcher: true}, nil, []string{"--registry-allowlist=r.example"}, nil, nil},
		{"bad values", worker, nil, []string{"--registry-config=" + bad, "--registry-mirror=nohost", "--registry-mirror=x.example=ftp://m",
			"--registry-concurrency=0", "--registry-max-attempts=0", "--registry-max-retry-after=10ms"},
			[]string{"--registry-config", "not both", `--registry-mirror "nohost"`, "mirrors[0]", "--registry-concurrency: 0", "--registry-max-attempts: 0", "--registry-max-retry-after: 10ms"}, nil},
		{"missing file", worker, nil, []string{"--registry-config=" + filepath.Join(dir, "none.json")}, []string{"--registry-config", "no such file"}, nil},
		{"bad environment", worker, map[string]string{"STEVEDORE_BLOB_CACHE_SIZE": "lots", "STEVEDORE_REGISTRY_ALLOWLIST": "https://x"}, nil,
			[]string{"STEVEDORE_BLOB_CACHE_SIZE", "STEVEDORE_REGISTRY_ALLOWLIST"}, nil},
		{"redirect hosts", worker, map[string]string{"STEVEDORE_REGISTRY_REDIRECT_HOSTS": "storage.example"}, []string{"--registry-redirect-hosts=*.s3.amazonaws.com,minio:9000"}, nil, func(t *testing.T, o *config.Options) {
			r := o.Registries.RedirectHosts
			if !r.Allows("storage.example:443") || !r.Allows("bucket.s3.amazonaws.com") || !r.Allows("minio:9000") || r.Allows("minio:9001") || r.Allows("s3.amazonaws.com.evil.example") {
				t.Errorf("redirect hosts %v", r)
			}
		}},
		{"bad redirect host", worker, map[string]string{"STEVEDORE_REGISTRY_REDIRECT_HOSTS": "https://x/y"}, nil, []string{"STEVEDORE_REGISTRY_REDIRECT_HOSTS"}, nil},
		{"stall limits", worker, nil, []string{"--blob-idle-timeout=0", "--blob-min-rate=1MiB", "--blob-min-rate-window=2m"}, nil, func(t *testing.T, o *config.Options) {
			if s := o.BlobStall; s.Idle >= 0 || s.MinRate != 1<<20 || s.Window != 2*time.Minute {
				t.Errorf("stall limits %+v", s)
			}
		}},
		{"stall defaults", worker, nil, nil, nil, func(t *testing.T, o *config.Options) {
			if s := o.BlobStall; s.Idle != fetch.DefaultStallIdle || s.MinRate != fetch.DefaultMinRate || s.Window != fetch.DefaultStallWindow || o.Registries.ResponseHeaderTimeout != registry.DefaultResponseHeaderTimeout {
				t.Errorf("stall limits %+v, response timeout %s", s, o.Registries.ResponseHeaderTimeout)
			}
		}},
		{"bad stall limits", worker, nil, []string{"--blob-idle-timeout=10ms", "--blob-min-rate-window=1ms", "--registry-response-timeout=1ms"},
			[]string{"--blob-idle-timeout", "--blob-min-rate-window", "--registry-response-timeout"}, nil},
		{"cache without a directory", worker, nil, []string{"--blob-cache-dir="}, []string{"--blob-cache-dir: required"}, nil},
	}
}

// runRegistryCase runs tc in its environment with base's flags; the
// error must not show a password.
func runRegistryCase(t *testing.T, base []string, tc registryCase) {
	envs := []string{"STEVEDORE_REGISTRY_ALLOWLIST", "STEVEDORE_BLOB_CACHE_SIZE", "STEVEDORE_REGISTRY_MIRRORS", "STEVEDORE_REGISTRY_CONFIG", "STEVEDORE_REGISTRY_REDIRECT_HOSTS"}
	sc := settingsCase{name: tc.name, env: tc.env, args: tc.args, want: tc.want, check: tc.check}
	runSettingsCase(t, tc.roles, envs, base, sc, "hunter22")
}

// checkBlobCacheSizes checks the values --blob-cache-size takes and refuses.
func checkBlobCacheSizes(t *testing.T, worker config.Roles) {
	var b = []string{"1024", "1KiB", "2 GiB", "3GB", "0"}
	for _, v := range b {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		config.Register(fs, worker)
		if err := fs.Set("blob-cache-size", v); err != nil {
			t.Errorf("--blob-cache-size=%s: %v", v, err)
		}
	}
	for _, v := range []string{"-1", "1.5GiB", "ten", "99999999999TiB"} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		config.Register(fs, worker)
		if err := fs.Set("blob-cache-size", v); err == nil {
			t.Errorf("--blob-cache-size=%s: no error", v)
		}
	}
}
