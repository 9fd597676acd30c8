package config_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/api/webhooks"
	"github.com/stevedore-dev/stevedore/internal/config"
)

func TestWebhookSettings(t *testing.T) {
	dispatcher := config.Roles{Dispatcher: true}
	const token = "0123456789abcdef0123"
	base := []string{"--database-url=postgres://x", "--nats-url=nats://y"}
	envs := []string{"STEVEDORE_WEBHOOK_DISTRIBUTION_TOKEN", "STEVEDORE_WEBHOOK_HARBOR_TOKEN", "STEVEDORE_WEBHOOK_QUAY_TOKEN",
		"STEVEDORE_WEBHOOK_ZOT_TOKEN", "STEVEDORE_WEBHOOK_GHCR_SECRET", "STEVEDORE_WEBHOOK_REGISTRIES", "STEVEDORE_WEBHOOK_RETRY_BASE",
		"STEVEDORE_WEBHOOK_MAX_BODY", "STEVEDORE_WEBHOOK_ZOT_REGISTRY", "STEVEDORE_WEBHOOK_RETRY_RATE"}
	for _, tc := range webhookCases(token) {
		t.Run(tc.name, func(t *testing.T) {
			runSettingsCase(t, dispatcher, append(envs, "DATABASE_URL", "NATS_URL"), base, tc, token)
		})
	}
}

// webhookCases are TestWebhookSettings' cases.
func webhookCases(token string) []settingsCase {
	return []settingsCase{
		{name: "no webhooks", check: func(t *testing.T, o *config.Options) {
			if o.Webhooks.AnyEnabled() {
				t.Error("a source is enabled")
			}
		}},
		{name: "from the environment",
			env: map[string]string{"STEVEDORE_WEBHOOK_DISTRIBUTION_TOKEN": token, "STEVEDORE_WEBHOOK_GHCR_SECRET": token + "-ghcr",
				"STEVEDORE_WEBHOOK_REGISTRIES": "localhost:5000=registry.localhost:5000", "STEVEDORE_WEBHOOK_RETRY_BASE": "5s"},
			check: func(t *testing.T, o *config.Options) {
				if !o.Webhooks.Enabled(webhooks.Distribution) || !o.Webhooks.Enabled(webhooks.GHCR) || o.Webhooks.Enabled(webhooks.Harbor) {
					t.Errorf("enabled: %v", o.Webhooks.Secrets)
				}
				if p, ok := o.Webhooks.Registries.PullHost("localhost:5000"); !ok || p != "registry.localhost:5000" {
					t.Errorf("pull host %q %v", p, ok)
				}
				if o.Webhooks.RetryBase != 5*time.Second || o.Webhooks.MaxBodySize != webhooks.DefaultMaxBodySize {
					t.Errorf("retry base %s, max body %d", o.Webhooks.RetryBase, o.Webhooks.MaxBodySize)
				}
			}},
		{name: "flag overrides the environment",
			env:  map[string]string{"STEVEDORE_WEBHOOK_HARBOR_TOKEN": token, "STEVEDORE_WEBHOOK_REGISTRIES": "a.example.com"},
			args: []string{"--webhook-registries=harbor.example.com", "--webhook-max-body=2048"},
			check: func(t *testing.T, o *config.Options) {
				if _, ok := o.Webhooks.Registries.PullHost("a.example.com"); ok {
					t.Error("the environment's list is still there")
				}
				if _, ok := o.Webhooks.Registries.PullHost("harbor.example.com"); !ok || o.Webhooks.MaxBodySize != 2048 {
					t.Error("flags not applied")
				}
			}},
		{name: "token without registries", env: map[string]string{"STEVEDORE_WEBHOOK_QUAY_TOKEN": token},
			want: []string{"--webhook-registries", "STEVEDORE_WEBHOOK_QUAY_TOKEN"}},
		{name: "short secret", env: map[string]string{"STEVEDORE_WEBHOOK_ZOT_TOKEN": "abc", "STEVEDORE_WEBHOOK_REGISTRIES": "z"},
			want: []string{"STEVEDORE_WEBHOOK_ZOT_TOKEN: 3 characters"}},
		{name: "malformed registries in the environment", env: map[string]string{"STEVEDORE_WEBHOOK_REGISTRIES": "a b"},
			want: []string{"environment STEVEDORE_WEBHOOK_REGISTRIES"}},
		{name: "malformed registries flag", args: []string{"--webhook-registries=x=y=z"}, want: []string{"-webhook-registries", `"y=z" is not a registry host`}},
		{name: "bad numbers", args: []string{"--webhook-max-body=10", "--webhook-retry-base=1ms", "--webhook-max-attempts=0"},
			want: []string{"--webhook-max-body: 10", "--webhook-retry-base 1ms", "--webhook-max-attempts: 0"}},
		{name: "amplification bounds", env: map[string]string{"STEVEDORE_WEBHOOK_RETRY_RATE": "0.5"},
			args: []string{"--webhook-max-targets=20", "--webhook-resolve-concurrency=3"},
			check: func(t *testing.T, o *config.Options) {
				if o.Webhooks.MaxTargets != 20 || o.Webhooks.ResolveConcurrency != 3 || o.Webhooks.RetryRate != 0.5 {
					t.Errorf("max targets %d, concurrency %d, retry rate %g", o.Webhooks.MaxTargets, o.Webhooks.ResolveConcurrency, o.Webhooks.RetryRate)
				}
			}},
		{name: "amplification defaults", check: func(t *testing.T, o *config.Options) {
			if o.Webhooks.MaxTargets != webhooks.DefaultMaxTargets || o.Webhooks.ResolveConcurrency != webhooks.DefaultResolveConcurrency || o.Webhooks.RetryRate != webhooks.DefaultRetryRate {
				t.Errorf("max targets %d, concurrency %d, retry rate %g", o.Webhooks.MaxTargets, o.Webhooks.ResolveConcurrency, o.Webhooks.RetryRate)
			}
		}},
		{name: "bad amplification bounds", env: map[string]string{"STEVEDORE_WEBHOOK_RETRY_RATE": "fast"},
			args: []string{"--webhook-max-targets=0", "--webhook-resolve-concurrency=1000"},
			want: []string{"--webhook-max-targets: 0", "--webhook-resolve-concurrency: 1000", `STEVEDORE_WEBHOOK_RETRY_RATE="fast"`}},
		{name: "zero retry rate", args: []string{"--webhook-retry-rate=0"}, want: []string{"--webhook-retry-rate: 0"}},
		{name: "bad zot registry", env: map[string]string{"STEVEDORE_WEBHOOK_ZOT_REGISTRY": "http://zot/x"}, want: []string{"--webhook-zot-registry"}},
	}
}

// The secrets are not flags: they would show in the process list and in
// --help.
func TestWebhookSecretsAreNotFlags(t *testing.T) {
	t.Setenv("STEVEDORE_WEBHOOK_HARBOR_TOKEN", "a-secret-that-must-not-show")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	config.Register(fs, config.Roles{Dispatcher: true})
	fs.PrintDefaults()
	if strings.Contains(help.String(), "a-secret-that-must-not-show") {
		t.Fatal("--help shows a secret")
	}
	// A flag naming a file that holds a secret (--harbor-token-file) is
	// fine: its value is a path.
	fs.VisitAll(func(f *flag.Flag) {
		if (strings.Contains(f.Name, "token") || strings.Contains(f.Name, "secret")) && !strings.HasSuffix(f.Name, "-file") {
			t.Errorf("flag --%s", f.Name)
		}
	})
}
