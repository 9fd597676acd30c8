package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
)

// closedPort returns a local address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

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
			return Config{DatabaseURL: "postgres://root@" + closedPort(t) + "/test?sslmode=disable&connect_timeout=5", Dispatcher: true}
		}, "connect to postgres at 127.0.0.1"},
		{"no database URL", func(t *testing.T) Config { return Config{Dispatcher: true} }, "no database URL"},
		{"unreachable NATS after the database", func(t *testing.T) Config {
			return Config{DatabaseURL: pgtest.URL(t), NATSURL: "nats://" + closedPort(t), Dispatcher: true}
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
