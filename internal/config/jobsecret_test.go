package config_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/config"
)

// The job secret comes from STEVEDORE_JOB_SECRET or --job-secret-file, for
// dispatchers and workers alike, is checked, and shows in no error and
// not in --help.
func TestJobSecretSettings(t *testing.T) {
	const secret = "the-secret-itself-0123456789abcdef"
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("the-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, roles := range []config.Roles{{Dispatcher: true}, {Worker: true}} {
		for _, tc := range []struct {
			settingsCase
			wantSecret string
		}{
			{settingsCase: settingsCase{name: "nothing"}},
			{settingsCase: settingsCase{name: "from the environment", env: map[string]string{"STEVEDORE_JOB_SECRET": secret}}, wantSecret: secret},
			{settingsCase: settingsCase{name: "from a file", args: []string{"--job-secret-file=" + file}}, wantSecret: secret},
			{settingsCase: settingsCase{name: "file from the environment", env: map[string]string{"STEVEDORE_JOB_SECRET_FILE": file}}, wantSecret: secret},
			{settingsCase: settingsCase{name: "both", env: map[string]string{"STEVEDORE_JOB_SECRET": secret}, args: []string{"--job-secret-file=" + file},
				want: []string{"STEVEDORE_JOB_SECRET and --job-secret-file: set one"}}},
			{settingsCase: settingsCase{name: "short", env: map[string]string{"STEVEDORE_JOB_SECRET": "the-secret"}, want: []string{"environment STEVEDORE_JOB_SECRET", "want at least 32"}}},
			{settingsCase: settingsCase{name: "short file", args: []string{"--job-secret-file=" + short}, want: []string{"--job-secret-file " + short, "want at least 32"}}},
			{settingsCase: settingsCase{name: "missing file", args: []string{"--job-secret-file=" + filepath.Join(dir, "none")}, want: []string{"no such file"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sc := tc.settingsCase
				sc.check = func(t *testing.T, o *config.Options) {
					if string(o.JobSecret) != tc.wantSecret {
						t.Errorf("secret %q, want %q", o.JobSecret, tc.wantSecret)
					}
				}
				runSettingsCase(t, roles, []string{"STEVEDORE_JOB_SECRET", "STEVEDORE_JOB_SECRET_FILE", "DATABASE_URL", "NATS_URL"},
					[]string{"--database-url=postgres://x", "--nats-url=nats://y"}, sc, "the-secret")
			})
		}
	}
	t.Run("not in --help", func(t *testing.T) {
		t.Setenv("STEVEDORE_JOB_SECRET", secret)
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		var help strings.Builder
		fs.SetOutput(&help)
		config.Register(fs, config.Roles{Worker: true})
		fs.PrintDefaults()
		if strings.Contains(help.String(), secret) || !strings.Contains(help.String(), "-job-secret-file") {
			t.Errorf("--help: %s", help.String())
		}
	})
}
