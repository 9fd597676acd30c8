package config_test

import (
	"flag"
	"io"
	"os"
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
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("the-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		env       map[string]string
		args      []string
		wantToken string
		want      []string // substrings of the error; none: valid
	}{
		{name: "nothing: disabled"},
		{name: "token from the environment", env: map[string]string{"STEVEDORE_HARBOR_TOKEN": token}, wantToken: token},
		{name: "token from a file", args: []string{"--harbor-token-file=" + file}, wantToken: token},
		{name: "file from the environment", env: map[string]string{"STEVEDORE_HARBOR_TOKEN_FILE": file}, wantToken: token},
		{name: "both", env: map[string]string{"STEVEDORE_HARBOR_TOKEN": token}, args: []string{"--harbor-token-file=" + file},
			want: []string{"STEVEDORE_HARBOR_TOKEN and --harbor-token-file: set one"}},
		{name: "short token", env: map[string]string{"STEVEDORE_HARBOR_TOKEN": "the-secret"}, want: []string{"environment STEVEDORE_HARBOR_TOKEN", "want at least 16"}},
		{name: "token with a space", env: map[string]string{"STEVEDORE_HARBOR_TOKEN": "the-secret-itself harbor"}, want: []string{"white space"}},
		{name: "short file", args: []string{"--harbor-token-file=" + short}, want: []string{"--harbor-token-file " + short, "want at least 16"}},
		{name: "empty file", args: []string{"--harbor-token-file=" + empty}, want: []string{"empty"}},
		{name: "missing file", args: []string{"--harbor-token-file=" + filepath.Join(dir, "none")}, want: []string{"no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"STEVEDORE_HARBOR_TOKEN", "STEVEDORE_HARBOR_TOKEN_FILE", "DATABASE_URL", "NATS_URL"} {
				t.Setenv(k, tc.env[k])
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o := config.Register(fs, dispatcher)
			err := fs.Parse(append([]string{"--database-url=postgres://x", "--nats-url=nats://y"}, tc.args...))
			if err == nil {
				err = o.Validate(dispatcher)
			}
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if o.Harbor.Token != tc.wantToken {
					t.Errorf("token %q, want %q", o.Harbor.Token, tc.wantToken)
				}
				return
			}
			if err == nil {
				t.Fatalf("valid, want errors %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "the-secret") {
				t.Errorf("the error shows the token: %v", err)
			}
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
