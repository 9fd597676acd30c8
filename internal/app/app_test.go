package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/testing/closedport"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
)

// TestStartFailsWithTheCause: a start-up that fails part-way returns the
// cause (it panicked with a nil pointer in Close, hiding it) and releases
// what it had opened.
func TestStartFailsWithTheCause(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T) Config
		want string
	}{
		{"unreachable database", func(t *testing.T) Config {
			return Config{DatabaseURL: "postgres://root@" + closedport.Addr(t) + "/test?sslmode=disable&connect_timeout=5", Dispatcher: true}
		}, "connect to postgres at 127.0.0.1"},
		{"no database URL", func(t *testing.T) Config { return Config{Dispatcher: true} }, "no database URL"},
		{"unreachable NATS after the database", func(t *testing.T) Config {
			return Config{DatabaseURL: pgtest.URL(t), NATSURL: "nats://" + closedport.Addr(t), Dispatcher: true}
		}, "connect to NATS at nats://127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(t)
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			n, err := Start(context.Background(), cfg)
			if err == nil {
				n.Close()
				t.Fatal("Start succeeded")
			}
			if n != nil {
				t.Errorf("Start returned a node with the error %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestRolesAssembleTheirParts: each role gets its parts and no others; the
// dispatcher role campaigns for the background work unless NoMaintenance
// (stevedore scan) says otherwise.
func TestRolesAssembleTheirParts(t *testing.T) {
	url := pgtest.URL(t)
	for _, tc := range []struct {
		name                          string
		cfg                           Config
		api, elector, worker, updater bool
	}{
		{"dispatcher", Config{Dispatcher: true}, true, true, false, false},
		{"dispatcher with a source", Config{Dispatcher: true, EnrichmentSources: []enrich.Source{{Name: enrich.RepositoryCPE, URL: "http://127.0.0.1:1/x.json"}}}, true, true, false, true},
		{"scan", Config{Dispatcher: true, NoMaintenance: true, Workers: 1}, true, false, true, false},
		{"worker", Config{Workers: 2}, false, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.DatabaseURL, cfg.Logger = url, slog.New(slog.DiscardHandler)
			n, err := Start(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if got := [4]bool{n.Handler != nil, n.Elector != nil, n.Worker != nil, n.Updater != nil}; got != [4]bool{tc.api, tc.elector, tc.worker, tc.updater} {
				t.Fatalf("API, elector, worker, updater: %v; want %v", got, [4]bool{tc.api, tc.elector, tc.worker, tc.updater})
			}
		})
	}
}
