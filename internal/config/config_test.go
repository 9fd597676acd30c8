package config_test

import (
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/config"
)

func TestValidate(t *testing.T) {
	worker := config.Roles{Worker: true}
	for _, tc := range []struct {
		name  string
		roles config.Roles
		env   map[string]string
		args  []string
		want  []string // substrings of the error; none: valid
	}{
		{"valid worker", worker, nil, []string{"--database-url=postgres://x", "--nats-url=nats://y"}, nil},
		{"missing everything", worker, nil, nil, []string{"--database-url: required", "--nats-url: required"}},
		{"embedded nats needs no url", config.Roles{Worker: true, EmbeddedNATS: true}, nil, []string{"--database-url=postgres://x"}, nil},
		{"bad numbers", worker, nil, []string{"--database-url=x", "--nats-url=y", "--workers=0", "--lease-ttl=10ms", "--max-deliver=0"},
			[]string{"--workers: 0", "--lease-ttl: 10ms", "--max-deliver: 0"}},
		{"malformed environment", worker, map[string]string{"STEVEDORE_WORKERS": "many", "STEVEDORE_ACK_WAIT": "soon"},
			[]string{"--database-url=x", "--nats-url=y"}, []string{`STEVEDORE_WORKERS="many"`, `STEVEDORE_ACK_WAIT="soon"`}},
		{"index wait out of range", config.Roles{Dispatcher: true}, nil, []string{"--database-url=x", "--nats-url=y", "--index-wait=500ms"}, []string{"--index-wait: 500ms"}},
		{"index wait and partial switch from the environment", config.Roles{Dispatcher: true},
			map[string]string{"STEVEDORE_INDEX_WAIT": "soon", "STEVEDORE_CLAIR_SERVE_PARTIAL": "maybe"},
			[]string{"--database-url=x", "--nats-url=y"}, []string{`STEVEDORE_INDEX_WAIT="soon"`, `STEVEDORE_CLAIR_SERVE_PARTIAL="maybe"`}},
		{"index wait and partial switch valid", config.Roles{Dispatcher: true},
			map[string]string{"STEVEDORE_INDEX_WAIT": "2m", "STEVEDORE_CLAIR_SERVE_PARTIAL": "true"}, []string{"--database-url=x", "--nats-url=y"}, nil},
		{"bad replicas", worker, nil, []string{"--database-url=x", "--nats-url=y", "--nats-replicas=7"}, []string{"--nats-replicas: 7"}},
		{"replicas from the environment", worker, map[string]string{"STEVEDORE_NATS_REPLICAS": "-1"}, []string{"--database-url=x", "--nats-url=y"}, []string{"--nats-replicas: -1"}},
		{"upgrade window out of range", worker, nil, []string{"--database-url=x", "--nats-url=y", "--upgrade-window=-1s"}, []string{"--upgrade-window: -1s"}},
		{"upgrade window too long, from the environment", config.Roles{Dispatcher: true}, map[string]string{"STEVEDORE_UPGRADE_WINDOW": "200h"},
			[]string{"--database-url=x", "--nats-url=y"}, []string{"--upgrade-window: 200h0m0s"}},
		{"upgrade window off", worker, nil, []string{"--database-url=x", "--nats-url=y", "--upgrade-window=0"}, nil},
		{"environment defaults", worker, map[string]string{"DATABASE_URL": "postgres://x", "NATS_URL": "nats://y", "STEVEDORE_WORKERS": "4"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			envs := []string{"DATABASE_URL", "NATS_URL", "STEVEDORE_WORKERS", "STEVEDORE_ACK_WAIT", "STEVEDORE_INDEX_WAIT", "STEVEDORE_CLAIR_SERVE_PARTIAL", "STEVEDORE_NATS_REPLICAS", "STEVEDORE_UPGRADE_WINDOW"}
			runSettingsCase(t, tc.roles, envs, nil, settingsCase{name: tc.name, env: tc.env, args: tc.args, want: tc.want})
		})
	}
}

// TestNATSStoreDir: --nats-store-dir's help and default say what a command
// does with an empty value: a temporary store (scan), or one kept in the
// user cache dir across restarts (serve). The help of serve said
// "temporary" while serve used the cache dir.
func TestNATSStoreDir(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", cache)
	kept := filepath.Join(cache, "stevedore", "jetstream")
	for _, tc := range []struct {
		name     string
		roles    config.Roles
		env      string
		args     []string
		want     string // NATSStoreDir after parsing
		wantHelp string
	}{
		{"temporary", config.Roles{Worker: true, EmbeddedNATS: true}, "", nil, "", "empty: a temporary one, removed on exit"},
		{"temporary, given", config.Roles{Worker: true, EmbeddedNATS: true}, "", []string{"--nats-store-dir=/srv/js"}, "/srv/js", "temporary"},
		{"kept", config.Roles{Dispatcher: true, Worker: true, EmbeddedNATS: true, KeepNATSStore: true}, "", nil, kept, "kept across restarts"},
		{"kept, from the environment", config.Roles{Worker: true, EmbeddedNATS: true, KeepNATSStore: true}, "/srv/env", nil, "/srv/env", "kept across restarts"},
		{"kept, given", config.Roles{Worker: true, EmbeddedNATS: true, KeepNATSStore: true}, "/srv/env", []string{"--nats-store-dir=/srv/flag"}, "/srv/flag", "kept across restarts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STEVEDORE_NATS_STORE_DIR", tc.env)
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o := config.Register(fs, tc.roles)
			if err := fs.Parse(append([]string{"--database-url=postgres://x"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			if err := o.Validate(tc.roles); err != nil {
				t.Fatal(err)
			}
			if o.NATSStoreDir != tc.want {
				t.Errorf("NATSStoreDir = %q, want %q", o.NATSStoreDir, tc.want)
			}
			f := fs.Lookup("nats-store-dir")
			if !strings.Contains(f.Usage, tc.wantHelp) {
				t.Errorf("help %q does not say %q", f.Usage, tc.wantHelp)
			}
			if tc.roles.KeepNATSStore && strings.Contains(f.Usage, "temporary") {
				t.Errorf("help %q says temporary for a kept store", f.Usage)
			}
			if tc.env == "" && f.DefValue != tc.want && len(tc.args) == 0 {
				t.Errorf("help shows the default %q, the command uses %q", f.DefValue, tc.want)
			}
		})
	}
}

func TestNATSStoreDirWithoutCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	t.Setenv("STEVEDORE_NATS_STORE_DIR", "")
	roles := config.Roles{Worker: true, EmbeddedNATS: true, KeepNATSStore: true}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := config.Register(fs, roles)
	if err := fs.Parse([]string{"--database-url=postgres://x"}); err != nil {
		t.Fatal(err)
	}
	err := o.Validate(roles)
	if err == nil || !strings.Contains(err.Error(), "--nats-store-dir: required") {
		t.Fatalf("error %v, want one saying --nats-store-dir is required", err)
	}
	// With an external NATS the store is not needed.
	if err := fs.Parse([]string{"--nats-url=nats://n"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(roles); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeWindowOff: --upgrade-window=0 turns the window off, which
// app.Config says with a negative window (zero there is the default).
func TestUpgradeWindowOff(t *testing.T) {
	if o, _ := parse(t, "--upgrade-window=0"); o.UpgradeWindow >= 0 {
		t.Errorf("--upgrade-window=0 gives a window of %s, want none (negative)", o.UpgradeWindow)
	}
	if o, _ := parse(t); o.UpgradeWindow != app.DefaultUpgradeWindow {
		t.Errorf("no --upgrade-window gives %s, want %s", o.UpgradeWindow, app.DefaultUpgradeWindow)
	}
}
