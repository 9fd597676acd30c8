package localpg_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stevedore-dev/stevedore/internal/cli/localpg"
)

// clusterDir is a fresh directory for a cluster. As root the cluster runs
// as the postgres user, who cannot enter t.TempDir()'s private parents, so
// the directory is made in /var/tmp (world-traversable) and removed after.
func clusterDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return filepath.Join(t.TempDir(), "pg")
	}
	dir, err := os.MkdirTemp("/var/tmp", "localpg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func query(t *testing.T, u string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect %s: %v", u, err)
	}
	defer conn.Close(ctx)
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	return db
}

// A real initdb and pg_ctl: the first Ensure creates and starts the
// cluster, the next reuses it, one after a stop starts it again; two at
// once on a new directory make one cluster between them.
func TestEnsureCreatesThenReuses(t *testing.T) {
	ctx := context.Background()
	dir := clusterDir(t)
	steps := []struct {
		name                 string
		before               func(t *testing.T, c *localpg.Cluster)
		wantCreated, wantRun bool
	}{
		{name: "first run creates", wantCreated: true, wantRun: true},
		{name: "second run reuses"},
		{name: "after a stop it starts", before: func(t *testing.T, c *localpg.Cluster) {
			if err := c.Stop(ctx); err != nil {
				t.Fatal(err)
			}
		}, wantRun: true},
	}
	var last *localpg.Cluster
	t.Cleanup(func() {
		if last != nil {
			last.Stop(context.Background())
		}
	})
	for _, s := range steps {
		if s.before != nil {
			s.before(t, last)
		}
		c, err := localpg.Ensure(ctx, localpg.Options{Dir: dir})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		last = c
		if c.Created != s.wantCreated || c.Started != s.wantRun {
			t.Errorf("%s: created %v started %v; want %v %v", s.name, c.Created, c.Started, s.wantCreated, s.wantRun)
		}
		if got := query(t, c.URL); got != localpg.Database {
			t.Errorf("%s: connected to database %q, want %q", s.name, got, localpg.Database)
		}
		if !strings.Contains(c.URL, "host="+strings.ReplaceAll(dir, "/", "%2F")) || strings.Contains(c.URL, "127.0.0.1") {
			t.Errorf("%s: URL %s is not the socket in %s", s.name, c.URL, dir)
		}
		if cmd := c.StopCommand(); !strings.Contains(cmd, "pg_ctl -D "+filepath.Join(dir, "data")+" stop") {
			t.Errorf("%s: stop command %q", s.name, cmd)
		}
		if msg := c.Message(); !strings.Contains(msg, dir) || strings.Contains(msg, "\n") {
			t.Errorf("%s: message %q: want one line naming %s", s.name, msg, dir)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := clusterDir(t)
	var wg sync.WaitGroup
	clusters := make([]*localpg.Cluster, 2)
	errs := make([]error, 2)
	for i := range clusters {
		wg.Go(func() { clusters[i], errs[i] = localpg.Ensure(ctx, localpg.Options{Dir: dir}) })
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range clusters {
			if c != nil {
				c.Stop(context.Background())
				return
			}
		}
	})
	created := 0
	for i, c := range clusters {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		if c.Created {
			created++
		}
		query(t, c.URL)
	}
	if created != 1 {
		t.Errorf("%d runs created the cluster, want 1", created)
	}
}

// Without PostgreSQL programs, the error says how to install them.
func TestEnsureNotInstalled(t *testing.T) {
	empty := t.TempDir()
	_, err := localpg.Ensure(context.Background(), localpg.Options{Dir: filepath.Join(t.TempDir(), "pg"), Path: []string{empty}, LibDir: empty})
	if !errors.Is(err, localpg.ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("error %v: want ErrNotInstalled with the apt-get install command", err)
	}
}

func TestFindBin(t *testing.T) {
	lib := t.TempDir()
	for _, v := range []string{"9.6", "15", "13", "16"} {
		bin := filepath.Join(lib, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		progs := []string{"initdb", "pg_ctl"}
		if v == "16" {
			progs = progs[:1] // incomplete: not taken
		}
		for _, p := range progs {
			if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name string
		path []string
		want string
	}{
		{"newest complete version", nil, filepath.Join(lib, "15", "bin")},
		{"PATH first", []string{t.TempDir(), filepath.Join(lib, "9.6", "bin")}, filepath.Join(lib, "9.6", "bin")},
	} {
		got, err := localpg.FindBin(tc.path, lib)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
