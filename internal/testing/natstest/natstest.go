// Package natstest starts a real, embedded NATS JetStream server for a test.
package natstest

import (
	"net"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stevedore-dev/stevedore/internal/queue/natsembed"
)

// Server is a running embedded server and a connection to it.
type Server struct {
	*server.Server
	Dir string
	NC  *nats.Conn
	JS  jetstream.JetStream
}

// Start starts a JetStream server with its store in a temp dir, connects to
// it, and stops both when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	ns, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	s := &Server{Server: ns, Dir: dir}
	s.NC, s.JS = Connect(t, ns.ClientURL())
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return s
}

// Connect opens a JetStream connection to url, closed when the test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	return nc, js
}

// Restart stops the server and starts a new one on the same port with the
// same store directory, as after a crash or an upgrade. Clients reconnect.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	port := s.Server.Addr().(*net.TCPAddr).Port
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
	ns, err := natsembed.Start(natsembed.Options{StoreDir: s.Dir, Port: port})
	if err != nil {
		t.Fatalf("natstest: restart: %v", err)
	}
	s.Server = ns
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
}
