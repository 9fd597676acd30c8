package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a JetStream cluster of embedded servers in the test process,
// connected by routes, each with its own store directory.
type Cluster struct {
	Servers []*server.Server
	// NC and JS are a connection that knows every server (it reconnects
	// to another when its server dies).
	NC *nats.Conn
	JS jetstream.JetStream
}

// StartCluster starts a JetStream cluster of n servers (n >= 3 for R3
// streams) and waits until it has a meta leader. The servers stop when the
// test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &Cluster{}
	for i := range n {
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Host:       "127.0.0.1",
			Port:       -1,
			Cluster: server.ClusterOpts{
				Name: "stevedore-test",
				Host: "127.0.0.1",
				Port: ports[i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
			NoSigs: true,
			NoLog:  true,
		})
		if err != nil {
			t.Fatalf("natstest: cluster server %d: %v", i, err)
		}
		go ns.Start()
		t.Cleanup(func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		})
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("natstest: cluster server %d not ready", i)
		}
		c.Servers = append(c.Servers, ns)
	}
	c.NC, c.JS = Connect(t, c.URLs())
	// JetStream answers once the servers have elected a meta leader.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.JS.AccountInfo(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: cluster has no JetStream meta leader after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// URLs lists the servers' client URLs, comma-separated (nats.Connect and
// NATS_URL take that form).
func (c *Cluster) URLs() string {
	var us []string
	for _, s := range c.Servers {
		us = append(us, s.ClientURL())
	}
	return strings.Join(us, ",")
}

// StreamLeader returns the index of the server that leads stream in the
// global account, or -1.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.Servers {
		if s.Running() && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// Kill stops server i at once, as a crash would (its store stays).
func (c *Cluster) Kill(i int) {
	c.Servers[i].Shutdown()
	c.Servers[i].WaitForShutdown()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
