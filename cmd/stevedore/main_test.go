package main

import (
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/pkg/config"
)

// TestNATSStoreDirHelp: each command's --nats-store-dir help says what
// the command does when the flag is empty (serve's said "a temporary one"
// while serve kept the store in the user cache dir).
func TestNATSStoreDirHelp(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("STEVEDORE_NATS_STORE_DIR", "")
	for _, tc := range []struct {
		command     string
		roles       config.Roles
		wantDefault string
		wantHelp    string
	}{
		{"scan", scanRoles(), "", "empty: a temporary one, removed on exit"},
		{"serve", serveRoles(), filepath.Join(cache, "stevedore", "jetstream"), "kept across restarts"},
	} {
		t.Run(tc.command, func(t *testing.T) {
			fs := flag.NewFlagSet("stevedore "+tc.command, flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			config.Register(fs, tc.roles)
			f := fs.Lookup("nats-store-dir")
			if f == nil {
				t.Fatal("no --nats-store-dir")
			}
			if f.DefValue != tc.wantDefault || !strings.Contains(f.Usage, tc.wantHelp) {
				t.Errorf("default %q, help %q; want default %q and help saying %q", f.DefValue, f.Usage, tc.wantDefault, tc.wantHelp)
			}
		})
	}
}
