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

// writeFiles writes each of files (name → content) into dir, readable by
// the owner only as a secret file is, and returns their paths by name.
func writeFiles(t *testing.T, dir string, files map[string]string) map[string]string {
	t.Helper()
	paths := make(map[string]string, len(files))
	for name, content := range files {
		paths[name] = filepath.Join(dir, name)
		if err := os.WriteFile(paths[name], []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// settingsCase is a set of flags and environment variables, and the
// substrings of the error they give or a check of the options.
type settingsCase struct {
	name string
	env  map[string]string
	args []string
	want []string // substrings of the error; none: valid
	// check runs on valid settings.
	check func(t *testing.T, o *config.Options)
}

// runSettingsCase sets each of envs to its value in tc.env (empty when
// absent), parses base and tc's flags for roles and validates them; it
// checks the options of valid settings, or that the error mentions each
// of tc.want and shows none of secrets.
func runSettingsCase(t *testing.T, roles config.Roles, envs, base []string, tc settingsCase, secrets ...string) {
	for _, k := range envs {
		t.Setenv(k, tc.env[k])
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := config.Register(fs, roles)
	err := fs.Parse(append(append([]string(nil), base...), tc.args...))
	if err == nil {
		err = o.Validate(roles)
	}
	if len(tc.want) == 0 {
		if err != nil {
			t.Fatal(err)
		}
		if tc.check != nil {
			tc.check(t, o)
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
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the error shows a secret: %v", err)
			break
		}
	}
}
