package clairconfig_test

import (
	"context"
	"encoding/base64"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/quay/clair/config"
	clair "github.com/quay/clair/v4/cmd"
)

// root is the repository's root.
const root = "../.."

// load loads compose.yaml as Docker Compose does (compose-go: the Compose
// Specification's schema, interpolation, profiles) with env as the
// environment.
func load(t *testing.T, env []string, profiles ...string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(abs, "compose.yaml")},
		cli.WithWorkingDirectory(abs), cli.WithEnv(env), cli.WithProfiles(profiles))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

func env(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("no service %s (services: %v)", name, slices.Sorted(func(yield func(string) bool) {
			for k := range p.Services {
				if !yield(k) {
					return
				}
			}
		}))
	}
	return s
}

// TestComposeProfiles: without the profile Clair's services are off; with it
// they run Clair's published image, pinned to a 4.x release.
func TestComposeProfiles(t *testing.T) {
	p := load(t, nil)
	for _, name := range []string{"postgres", "nats", "registry", "jaeger", "dispatcher", "worker"} {
		service(t, p, name)
	}
	for _, name := range []string{"clair-matcher", "clair-notifier", "clair-postgres"} {
		if _, ok := p.Services[name]; ok {
			t.Errorf("%s runs without the clair profile", name)
		}
		if _, ok := p.DisabledServices[name]; !ok {
			t.Errorf("%s is not a disabled service", name)
		}
	}
	p = load(t, nil, "clair")
	pinned := regexp.MustCompile(`^quay\.io/projectquay/clair:4\.[0-9]+\.[0-9]+$`)
	for _, name := range []string{"clair-matcher", "clair-notifier"} {
		if img := service(t, p, name).Image; !pinned.MatchString(img) {
			t.Errorf("%s runs %q, want Clair's published image pinned to a 4.x release", name, img)
		}
	}
}

// clairConfig lays out a service's /config as compose.yaml mounts it (the
// bind-mounted config.yaml and the configs' drop-ins) and loads it with
// Clair's own loader, in the service's mode, validated as the clair binary
// does at start, then linted.
func clairConfig(t *testing.T, p *types.Project, name string) *config.Config {
	t.Helper()
	s := service(t, p, name)
	confPath := env(s, "CLAIR_CONF")
	if confPath == "" {
		confPath = "/config/config.yaml" // the image's default
	}
	return loadConfig(t, s, name, layOutConfig(t, p, s, name, confPath))
}

// layOutConfig writes service s's /config in a temporary directory as
// compose.yaml mounts it (the bind-mounted file at confPath and the
// configs' drop-ins beside it) and returns the local path of confPath.
func layOutConfig(t *testing.T, p *types.Project, s types.ServiceConfig, name, confPath string) string {
	t.Helper()
	dir := t.TempDir()
	local := func(target string) string {
		rel, err := filepath.Rel(filepath.Dir(confPath), target)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("%s: %s is outside %s", name, target, filepath.Dir(confPath))
		}
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	found := false
	for _, v := range s.Volumes {
		if v.Target != confPath {
			continue
		}
		if v.Type != types.VolumeTypeBind || !v.ReadOnly {
			t.Errorf("%s: %s is a %s mount (read-only %v), want a read-only bind mount", name, confPath, v.Type, v.ReadOnly)
		}
		b, err := os.ReadFile(v.Source)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := os.WriteFile(local(v.Target), b, 0o644); err != nil {
			t.Fatal(err)
		}
		found = true
	}
	if !found {
		t.Fatalf("%s: nothing is mounted at %s", name, confPath)
	}
	for _, c := range s.Configs {
		obj, ok := p.Configs[c.Source]
		if !ok || obj.Content == "" {
			t.Fatalf("%s: config %s has no content", name, c.Source)
		}
		if !strings.HasPrefix(c.Target, confPath+".d/") {
			t.Errorf("%s: config %s at %s, not a drop-in of %s", name, c.Source, c.Target, confPath)
		}
		if err := os.WriteFile(local(c.Target), []byte(obj.Content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	return local(confPath)
}

// loadConfig loads the configuration at path with Clair's own loader, in
// service s's mode, validates it as the clair binary does at start, and
// lints it.
func loadConfig(t *testing.T, s types.ServiceConfig, name, path string) *config.Config {
	t.Helper()
	var cfg config.Config
	if err := clair.LoadConfig(&cfg, path, true); err != nil {
		t.Fatalf("%s: Clair's loader: %v", name, err)
	}
	mode, err := config.ParseMode(env(s, "CLAIR_MODE"))
	if err != nil {
		t.Fatalf("%s: CLAIR_MODE: %v", name, err)
	}
	cfg.Mode = mode
	ws, err := config.Validate(&cfg)
	if err != nil {
		t.Fatalf("%s: Clair's validation: %v", name, err)
	}
	for _, w := range ws {
		t.Errorf("%s: Clair's validation warns: %v", name, &w)
	}
	// Lint looks at every section, whatever the mode: the sections of the
	// other modes are not this service's (their connstrings are empty).
	lint, err := config.Lint(&cfg)
	if err != nil {
		t.Fatalf("%s: Clair's lint: %v", name, err)
	}
	others := map[config.Mode][]string{
		config.MatcherMode:  {"$.indexer", "$.notifier"},
		config.NotifierMode: {"$.indexer", "$.matcher"},
	}[mode]
	at := regexp.MustCompile(`\(at (\$[^)]*)\)$`)
	for _, w := range lint {
		m := at.FindStringSubmatch(w.Error())
		if m != nil && slices.ContainsFunc(others, func(o string) bool { return m[1] == o || strings.HasPrefix(m[1], o+".") }) {
			continue
		}
		t.Errorf("%s: Clair's lint warns: %v", name, &w)
	}
	return &cfg
}

// TestClairConfigs loads the Clair services' configuration with Clair's code
// and checks that it fits Stevedore's: the same key, the indexer address is
// the dispatcher, the matcher and notifier are where the dispatcher sends
// /matcher/ and /notifier/, their databases are the ones init.sql makes.
func TestClairConfigs(t *testing.T) {
	const psk = "b3BlcmF0b3ItY2hvc2VuLWtleS1vZi10aGlydHktdHdvLWJ5dGVzIQ=="
	for _, tc := range []struct {
		name string
		env  []string
		key  string // the key all of them must share
	}{
		{"demo defaults", nil, ""},
		{"operator's settings", []string{"STEVEDORE_AUTH_PSK=" + psk, "QUAY_SECSCAN_NOTIFICATION_URL=https://quay.example.com/secscan/notification"}, psk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := load(t, tc.env, "clair")
			d := service(t, p, "dispatcher")
			key := env(d, "STEVEDORE_AUTH_PSK")
			if tc.key != "" && key != tc.key {
				t.Errorf("dispatcher's key is not the environment's")
			}
			rawKey, err := base64.StdEncoding.DecodeString(key)
			if err != nil || len(rawKey) < 32 {
				t.Fatalf("dispatcher's STEVEDORE_AUTH_PSK: %d bytes, %v: want base64 of at least 32 bytes", len(rawKey), err)
			}
			_, dport, err := net.SplitHostPort(env(d, "STEVEDORE_ADDR"))
			if err != nil {
				t.Fatalf("dispatcher's STEVEDORE_ADDR: %v", err)
			}
			initSQL, err := os.ReadFile(filepath.Join(root, "deploy/clair/init.sql"))
			if err != nil {
				t.Fatal(err)
			}

			matcher := clairConfig(t, p, "clair-matcher")
			notifier := clairConfig(t, p, "clair-notifier")
			for _, c := range []struct {
				name, indexer, connstring string
				cfg                       *config.Config
				upstream                  string // the dispatcher's URL for this service
			}{
				{"clair-matcher", matcher.Matcher.IndexerAddr, matcher.Matcher.ConnString, matcher, env(d, "STEVEDORE_CLAIR_MATCHER_URL")},
				{"clair-notifier", notifier.Notifier.IndexerAddr, notifier.Notifier.ConnString, notifier, env(d, "STEVEDORE_CLAIR_NOTIFIER_URL")},
			} {
				psk := c.cfg.Auth.PSK
				if psk == nil || string(psk.Key) != string(rawKey) {
					t.Errorf("%s: auth.psk.key is not the dispatcher's STEVEDORE_AUTH_PSK", c.name)
				} else if !slices.Contains(psk.Issuer, "quay") {
					t.Errorf("%s: auth.psk.iss %q: Quay's tokens (iss quay) are refused", c.name, psk.Issuer)
				}
				if u, err := url.Parse(c.indexer); err != nil || u.Hostname() != "dispatcher" || u.Port() != dport {
					t.Errorf("%s: indexer_addr %q, want the dispatcher on port %s", c.name, c.indexer, dport)
				}
				_, lport, err := net.SplitHostPort(c.cfg.HTTPListenAddr)
				if err != nil {
					t.Fatal(err)
				}
				if want := "http://" + c.name + ":" + lport; c.upstream != want {
					t.Errorf("dispatcher passes %s's requests to %q, want %q", c.name, c.upstream, want)
				}
				db := regexp.MustCompile(`dbname=(\S+)`).FindStringSubmatch(c.connstring)
				if db == nil || !strings.Contains(string(initSQL), "CREATE DATABASE "+db[1]+" ") || !strings.Contains(c.connstring, "host=clair-postgres ") {
					t.Errorf("%s: connstring %q: want a database that deploy/clair/init.sql makes on clair-postgres", c.name, c.connstring)
				}
			}
			if want := "http://clair-matcher:" + strings.TrimPrefix(matcher.HTTPListenAddr, ":") + "/"; notifier.Notifier.MatcherAddr != want {
				t.Errorf("notifier's matcher_addr %q, want %q", notifier.Notifier.MatcherAddr, want)
			}
			wh := notifier.Notifier.Webhook
			if wh == nil {
				t.Fatal("the notifier has no webhook")
			}
			if tc.key != "" && wh.Target != "https://quay.example.com/secscan/notification" {
				t.Errorf("webhook target %q: QUAY_SECSCAN_NOTIFICATION_URL not applied", wh.Target)
			}
			if cb, err := url.Parse(wh.Callback); err != nil || cb.Hostname() != "dispatcher" || cb.Path != "/notifier/api/v1/notification/" {
				t.Errorf("webhook callback %q, want the dispatcher's /notifier/api/v1/notification/", wh.Callback)
			}
		})
	}
}
