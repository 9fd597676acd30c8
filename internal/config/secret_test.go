package config_test

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/config"
)

// secretKind is a setting whose secret comes from an environment variable
// or from a file named by a flag (see TestSecretSettings).
type secretKind struct {
	name          string
	roles         config.Roles
	env, fileEnv  string
	flag          string
	min           int
	got           func(o *config.Options) string
	secret, short string
	// extra are cases of this setting only.
	extra []settingsCase
}

// TestSecretSettings: Harbor's scanner API token and the job secret come
// from their environment variable or a file, are checked, and show in no
// error and not in --help.
func TestSecretSettings(t *testing.T) {
	for _, k := range []secretKind{
		{name: "harbor", roles: config.Roles{Dispatcher: true}, env: "STEVEDORE_HARBOR_TOKEN", fileEnv: "STEVEDORE_HARBOR_TOKEN_FILE",
			flag: "harbor-token-file", min: 16, got: func(o *config.Options) string { return o.Harbor.Token },
			secret: "the-secret-itself-harbor-token", short: "the-secret",
			extra: []settingsCase{{name: "token with a space", env: map[string]string{"STEVEDORE_HARBOR_TOKEN": "the-secret-itself harbor"}, want: []string{"white space"}}}},
		{name: "job, dispatcher", roles: config.Roles{Dispatcher: true}, env: "STEVEDORE_JOB_SECRET", fileEnv: "STEVEDORE_JOB_SECRET_FILE",
			flag: "job-secret-file", min: 32, got: func(o *config.Options) string { return string(o.JobSecret) },
			secret: "the-secret-itself-0123456789abcdef", short: "the-secret-itself"},
		{name: "job, worker", roles: config.Roles{Worker: true}, env: "STEVEDORE_JOB_SECRET", fileEnv: "STEVEDORE_JOB_SECRET_FILE",
			flag: "job-secret-file", min: 32, got: func(o *config.Options) string { return string(o.JobSecret) },
			secret: "the-secret-itself-0123456789abcdef", short: "the-secret-itself"},
	} {
		t.Run(k.name, func(t *testing.T) { checkSecretSetting(t, k) })
	}
}

// checkSecretSetting runs the cases every secret setting shares, then k's own.
func checkSecretSetting(t *testing.T, k secretKind) {
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]string{"secret": k.secret + "\n", "short": k.short + "\n", "empty": "\n"})
	file, short, empty := files["secret"], files["short"], files["empty"]
	atLeast := fmt.Sprintf("want at least %d", k.min)
	cases := []struct {
		settingsCase
		want string
	}{
		{settingsCase: settingsCase{name: "nothing"}},
		{settingsCase: settingsCase{name: "from the environment", env: map[string]string{k.env: k.secret}}, want: k.secret},
		{settingsCase: settingsCase{name: "from a file", args: []string{"--" + k.flag + "=" + file}}, want: k.secret},
		{settingsCase: settingsCase{name: "file from the environment", env: map[string]string{k.fileEnv: file}}, want: k.secret},
		{settingsCase: settingsCase{name: "both", env: map[string]string{k.env: k.secret}, args: []string{"--" + k.flag + "=" + file},
			want: []string{k.env + " and --" + k.flag + ": set one"}}},
		{settingsCase: settingsCase{name: "short", env: map[string]string{k.env: k.short}, want: []string{"environment " + k.env, atLeast}}},
		{settingsCase: settingsCase{name: "short file", args: []string{"--" + k.flag + "=" + short}, want: []string{"--" + k.flag + " " + short, atLeast}}},
		{settingsCase: settingsCase{name: "empty file", args: []string{"--" + k.flag + "=" + empty}, want: []string{"empty"}}},
		{settingsCase: settingsCase{name: "missing file", args: []string{"--" + k.flag + "=" + filepath.Join(dir, "none")}, want: []string{"no such file"}}},
	}
	for _, sc := range k.extra {
		cases = append(cases, struct {
			settingsCase
			want string
		}{settingsCase: sc})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.settingsCase
			sc.check = func(t *testing.T, o *config.Options) {
				if got := k.got(o); got != tc.want {
					t.Errorf("secret %q, want %q", got, tc.want)
				}
			}
			runSettingsCase(t, k.roles, []string{k.env, k.fileEnv, "DATABASE_URL", "NATS_URL"},
				[]string{"--database-url=postgres://x", "--nats-url=nats://y"}, sc, "the-secret")
		})
	}
	t.Run("not in --help", func(t *testing.T) {
		t.Setenv(k.env, k.secret)
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		var help strings.Builder
		fs.SetOutput(&help)
		config.Register(fs, k.roles)
		fs.PrintDefaults()
		if strings.Contains(help.String(), k.secret) || !strings.Contains(help.String(), "-"+k.flag) {
			t.Errorf("--help: %s", help.String())
		}
	})
}
