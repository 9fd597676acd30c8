package cli

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/cli/localpg"
	"github.com/stevedore-dev/stevedore/internal/config"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
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

// pushImage serves a two-layer image (Debian packages and an npm package)
// from an in-process registry.
func pushImage(t *testing.T) (ref, missing string) {
	t.Helper()
	reg := devregistry.NewTestServer(t)
	ref = PushTwoEcosystems(t, reg, "cli/app:1", "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n")
	return ref, reg.Ref("cli/absent:1")
}

// PushTwoEcosystems pushes to reg as repoTag an image of a Debian 12 base
// layer with dpkgStatus and an npm package (express 4.16.4) on top, and
// returns its reference. It is exported for the external tests.
func PushTwoEcosystems(t *testing.T, reg *devregistry.Server, repoTag, dpkgStatus string) string {
	t.Helper()
	base, err := devregistry.LayerFromFiles(map[string][]byte{
		"etc/os-release":      []byte("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian 12\"\n"),
		"var/lib/dpkg/status": []byte(dpkgStatus),
	})
	if err != nil {
		t.Fatal(err)
	}
	app, err := devregistry.LayerFromFiles(map[string][]byte{
		"app/node_modules/express/package.json": []byte(`{"name": "express", "version": "4.16.4"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref(repoTag)
	if _, err := devregistry.PushLayers(context.Background(), ref, base, app); err != nil {
		t.Fatal(err)
	}
	return ref
}

// runCLI runs the command line with stdout and stderr on files (as when
// piped: not terminals) and returns its exit status and what it wrote.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errF.Close()
	code = Main(context.Background(), args, outF, errF)
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	return code, string(o), string(e)
}

// stevedore scan piped: the answer on stdout, no status line and no INFO
// logs on stderr (-v brings them), the exit status says how it went.
func TestScanCommandLine(t *testing.T) {
	ref, missing := pushImage(t)
	t.Setenv("DATABASE_URL", pgtest.URL(t))
	outFile := filepath.Join(t.TempDir(), "report.json")
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    []string
		wantErr    []string
		notInErr   []string
		checkFiles func(t *testing.T)
	}{
		{
			name: "table", args: []string{"scan", ref}, wantCode: 0,
			wantOut:  []string{"Packages:      2: deb 1, npm 1", "express  4.16.4   npm   app/node_modules/express/package.json"},
			notInErr: []string{"level=INFO", "\r", "\x1b", "scanning"},
		},
		{
			name: "verbose", args: []string{"scan", "-v", ref}, wantCode: 0,
			wantOut: []string{"libc6"}, wantErr: []string{"level=INFO"}, notInErr: []string{"level=DEBUG", "\x1b"},
		},
		{
			name: "json to a file", args: []string{"scan", "--format", "json", "--output", outFile, ref}, wantCode: 0,
			notInErr: []string{"level=INFO"},
			checkFiles: func(t *testing.T) {
				b, err := os.ReadFile(outFile)
				if err != nil {
					t.Fatal(err)
				}
				var r report.Report
				if err := json.Unmarshal(b, &r); err != nil || r.State != report.StateIndexFinished || len(r.Packages) != 2 {
					t.Fatalf("--output file: %v, %+v", err, r)
				}
			},
		},
		{name: "image not found", args: []string{"scan", missing}, wantCode: 1, wantErr: []string{"stevedore: scan " + missing}},
		{name: "unknown format", args: []string{"scan", "--format", "xml", ref}, wantCode: 1, wantErr: []string{`--format: "xml": want one of cyclonedx-json, json, spdx-json, table`}},
		{name: "no reference", args: []string{"scan"}, wantCode: 2, wantErr: []string{"usage: stevedore scan"}},
		{name: "unknown flag", args: []string{"scan", "--bogus", ref}, wantCode: 2, wantErr: []string{"flag provided but not defined: -bogus"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", code, tc.wantCode, errOut)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			for _, bad := range tc.notInErr {
				if strings.Contains(errOut, bad) {
					t.Errorf("stderr has %q:\n%s", bad, errOut)
				}
			}
			if tc.checkFiles != nil {
				tc.checkFiles(t)
			}
		})
	}
}

// Without DATABASE_URL, stevedore scan makes a private PostgreSQL cluster
// (real initdb and pg_ctl) and says so in one line; the next run reuses it.
func TestScanWithoutDatabase(t *testing.T) {
	ref, _ := pushImage(t)
	t.Setenv("DATABASE_URL", "")
	pgDir := clusterDir(t)
	t.Cleanup(func() {
		if c, err := localpg.Ensure(context.Background(), localpg.Options{Dir: pgDir}); err == nil {
			c.Stop(context.Background())
		}
	})
	for _, want := range []string{"created and started the private PostgreSQL cluster in " + pgDir, "using the private PostgreSQL cluster in " + pgDir} {
		code, out, errOut := runCLI(t, "scan", "--postgres-dir", pgDir, ref)
		if code != 0 {
			t.Fatalf("exit status %d; stderr:\n%s", code, errOut)
		}
		if !strings.Contains(out, "express") {
			t.Errorf("stdout lacks the image's packages:\n%s", out)
		}
		if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 1 || !strings.Contains(lines[0], want) {
			t.Errorf("stderr: want one line saying %q, got:\n%s", want, errOut)
		}
	}
}

// clusterDir is a fresh directory for a private cluster: in /var/tmp as
// root, since the postgres user that runs root's cluster cannot enter
// t.TempDir()'s private parents.
func clusterDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return filepath.Join(t.TempDir(), "pg")
	}
	dir, err := os.MkdirTemp("/var/tmp", "stevedore-cli-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
