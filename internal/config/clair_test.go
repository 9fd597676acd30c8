package config_test

import (
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/config"
)

func TestClairSettings(t *testing.T) {
	dispatcher := config.Roles{Dispatcher: true}
	const psk = "c3RldmVkb3JlLWNvbmZpZy10ZXN0LWtleS0zMi1ieXRlcyE=" // "stevedore-config-test-key-32-bytes!"
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]string{"psk": psk + "\n", "bad": "the-secret-itself, not base64", "big": strings.Repeat("QUFB", 2000)})
	keyFile, badFile, bigFile := files["psk"], files["bad"], files["big"]
	envs := []string{"STEVEDORE_AUTH_PSK", "STEVEDORE_AUTH_PSK_FILE", "STEVEDORE_AUTH_ISSUERS", "STEVEDORE_AUTH_CLOCK_SKEW",
		"STEVEDORE_CLAIR_MATCHER_URL", "STEVEDORE_CLAIR_NOTIFIER_URL"}
	for _, tc := range clairCases(psk, dir, keyFile, badFile, bigFile) {
		t.Run(tc.name, func(t *testing.T) {
			runSettingsCase(t, dispatcher, append(envs, "DATABASE_URL", "NATS_URL"), []string{"--database-url=postgres://x", "--nats-url=nats://y"}, tc, "the-secret-itself", psk)
		})
	}
}

// clairCases are TestClairSettings' cases; keyFile, badFile and bigFile are
// in dir.
func clairCases(psk, dir, keyFile, badFile, bigFile string) []settingsCase {
	return []settingsCase{
		{name: "nothing: open API, no Clair services", check: func(t *testing.T, o *config.Options) {
			if o.Auth.Enabled() || o.Clair.MatcherURL != "" || o.Clair.NotifierURL != "" {
				t.Errorf("auth %v, clair %+v", o.Auth.Enabled(), o.Clair)
			}
			if !slices.Equal(o.Auth.Issuers, []string{"quay", "clairctl", "clair-intraservice"}) || o.Auth.ClockSkew != 15*time.Second {
				t.Errorf("issuers %q, skew %s", o.Auth.Issuers, o.Auth.ClockSkew)
			}
		}},
		{name: "key from the environment",
			env: map[string]string{"STEVEDORE_AUTH_PSK": psk, "STEVEDORE_AUTH_ISSUERS": "quay, clair-intraservice", "STEVEDORE_AUTH_CLOCK_SKEW": "30s",
				"STEVEDORE_CLAIR_MATCHER_URL": "http://clair-matcher:6060", "STEVEDORE_CLAIR_NOTIFIER_URL": "http://clair-notifier:6060"},
			check: func(t *testing.T, o *config.Options) {
				if string(o.Auth.Key) != "stevedore-config-test-key-32-bytes!" {
					t.Errorf("key not decoded")
				}
				if !slices.Equal(o.Auth.Issuers, []string{"quay", "clair-intraservice"}) || o.Auth.ClockSkew != 30*time.Second {
					t.Errorf("issuers %q, skew %s", o.Auth.Issuers, o.Auth.ClockSkew)
				}
				if o.Clair.MatcherURL != "http://clair-matcher:6060" || o.Clair.NotifierURL != "http://clair-notifier:6060" {
					t.Errorf("clair %+v", o.Clair)
				}
			}},
		{name: "key from a file", args: []string{"--auth-psk-file=" + keyFile, "--auth-issuers=quay", "--clair-matcher-url=https://m.example.com"},
			check: func(t *testing.T, o *config.Options) {
				if string(o.Auth.Key) != "stevedore-config-test-key-32-bytes!" || !slices.Equal(o.Auth.Issuers, []string{"quay"}) || o.Clair.MatcherURL != "https://m.example.com" {
					t.Errorf("key %v, issuers %q, clair %+v", o.Auth.Enabled(), o.Auth.Issuers, o.Clair)
				}
			}},
		{name: "file from the environment", env: map[string]string{"STEVEDORE_AUTH_PSK_FILE": keyFile}, check: func(t *testing.T, o *config.Options) {
			if !o.Auth.Enabled() {
				t.Error("no key")
			}
		}},
		{name: "both", env: map[string]string{"STEVEDORE_AUTH_PSK": psk}, args: []string{"--auth-psk-file=" + keyFile}, want: []string{"STEVEDORE_AUTH_PSK and --auth-psk-file: set one"}},
		{name: "key not base64", env: map[string]string{"STEVEDORE_AUTH_PSK": "the-secret-itself, not base64"}, want: []string{"environment STEVEDORE_AUTH_PSK: the key is not standard base64"}},
		{name: "file not base64", args: []string{"--auth-psk-file=" + badFile}, want: []string{"--auth-psk-file " + badFile + ": the key is not standard base64"}},
		{name: "missing file", args: []string{"--auth-psk-file=" + filepath.Join(dir, "none")}, want: []string{"--auth-psk-file", "no such file"}},
		{name: "big file", args: []string{"--auth-psk-file=" + bigFile}, want: []string{"not a key file"}},
		{name: "empty issuer", args: []string{"--auth-issuers=quay,,clairctl"}, want: []string{`--auth-issuers "quay,,clairctl": issuer 2 is empty`}},
		{name: "skew too large", args: []string{"--auth-clock-skew=1h"}, want: []string{"--auth-clock-skew: 1h0m0s"}},
		{name: "malformed skew in the environment", env: map[string]string{"STEVEDORE_AUTH_CLOCK_SKEW": "soon"}, want: []string{`STEVEDORE_AUTH_CLOCK_SKEW="soon"`}},
		{name: "bad service URLs", env: map[string]string{"STEVEDORE_CLAIR_MATCHER_URL": "clair-matcher:6060"}, args: []string{"--clair-notifier-url=http://u:the-secret-itself@n:6060"},
			want: []string{"--clair-matcher-url", "want an http:// or https:// URL", "--clair-notifier-url", "credentials do not belong"}},
	}
}

// The key is not a flag: it would show in the process list and in --help.
func TestAuthKeyIsNotAFlag(t *testing.T) {
	const psk = "YS1rZXktdGhhdC1tdXN0LW5vdC1zaG93LWluLWhlbHA="
	t.Setenv("STEVEDORE_AUTH_PSK", psk)
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	config.Register(fs, config.Roles{Dispatcher: true})
	fs.PrintDefaults()
	if strings.Contains(help.String(), psk) {
		t.Fatal("--help shows the key")
	}
	if !strings.Contains(help.String(), "-auth-psk-file") {
		t.Error("no --auth-psk-file")
	}
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Contains(f.Name, "psk") && f.Name != "auth-psk-file" || strings.Contains(f.Name, "key") {
			t.Errorf("flag --%s", f.Name)
		}
	})
}
