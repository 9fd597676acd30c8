// Package natstest starts a real, embedded NATS JetStream server for a test.
package natstest

import (
	"bytes"
	"io/fs"
	"net"
	"os"
	"path/filepath"
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

// StoreHolds reads every file of the server's JetStream store (its
// messages as they are on disk) and returns those of needles found in
// them, each once. The test fails if the store holds no byte.
func (s *Server) StoreHolds(t testing.TB, needles ...string) []string {
	t.Helper()
	found := map[string]bool{}
	n := 0
	err := filepath.WalkDir(s.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		n += len(b)
		for _, x := range needles {
			found[x] = found[x] || bytes.Contains(b, []byte(x))
		}
		return err
	})
	if err != nil || n == 0 {
		t.Fatalf("natstest: reading the store %s: %v, %d bytes", s.Dir, err, n)
	}
	var out []string
	for _, x := range needles {
		if found[x] {
			out = append(out, x)
		}
	}
	return out
}
