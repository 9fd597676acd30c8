package config_test

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/config"
)

// The Harbor scanner API's token comes from STEVEDORE_HARBOR_TOKEN or
// --harbor-token-file, is checked, and shows in no error and not in --help.
func TestHarborSettings(t *testing.T) {
	dispatcher := config.Roles{Dispatcher: true}
	const token = "the-secret-itself-harbor-token"
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]string{"token": token + "\n", "short": "the-secret\n", "empty": "\n"})
	file, short, empty := files["token"], files["short"], files["empty"]
	for _, tc := range []struct {
		settingsCase
		wantToken string
	}{
		{settingsCase: settingsCase{name: "nothing: disabled"}},
		{settingsCase: settingsCase{name: "token from the environment", env: map[string]string{"STEVEDORE_HARBOR_TOKEN": token}}, wantToken: token},
		{settingsCase: settingsCase{name: "token from a file", args: []string{"--harbor-token-file=" + file}}, wantToken: token},
		{settingsCase: settingsCase{name: "file from the environment", env: map[string]string{"STEVEDORE_HARBOR_TOKEN_FILE": file}}, wantToken: token},
		{settingsCase: settingsCase{name: "both", env: map[string]string{"STEVEDORE_HARBOR_TOKEN": token}, args: []string{"--harbor-token-file=" + file},
			want: []string{"STEVEDORE_HARBOR_TOKEN and --harbor-token-file: set one"}}},
		{settingsCase: settingsCase{name: "short token", env: map[string]string{"STEVEDORE_HARBOR_TOKEN": "the-secret"}, want: []string{"environment STEVEDORE_HARBOR_TOKEN", "want at least 16"}}},
		{settingsCase: settingsCase{name: "token with a space", env: map[string]string{"STEVEDORE_HARBOR_TOKEN": "the-secret-itself harbor"}, want: []string{"white space"}}},
		{settingsCase: settingsCase{name: "short file", args: []string{"--harbor-token-file=" + short}, want: []string{"--harbor-token-file " + short, "want at least 16"}}},
		{settingsCase: settingsCase{name: "empty file", args: []string{"--harbor-token-file=" + empty}, want: []string{"empty"}}},
		{settingsCase: settingsCase{name: "missing file", args: []string{"--harbor-token-file=" + filepath.Join(dir, "none")}, want: []string{"no such file"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.settingsCase
			sc.check = func(t *testing.T, o *config.Options) {
				if o.Harbor.Token != tc.wantToken {
					t.Errorf("token %q, want %q", o.Harbor.Token, tc.wantToken)
				}
			}
			runSettingsCase(t, dispatcher, []string{"STEVEDORE_HARBOR_TOKEN", "STEVEDORE_HARBOR_TOKEN_FILE", "DATABASE_URL", "NATS_URL"},
				[]string{"--database-url=postgres://x", "--nats-url=nats://y"}, sc, "the-secret")
		})
	}
	t.Run("not in --help", func(t *testing.T) {
		t.Setenv("STEVEDORE_HARBOR_TOKEN", token)
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		var help strings.Builder
		fs.SetOutput(&help)
		config.Register(fs, dispatcher)
		fs.PrintDefaults()
		if strings.Contains(help.String(), token) || !strings.Contains(help.String(), "-harbor-token-file") {
			t.Errorf("--help: %s", help.String())
		}
	})
}
