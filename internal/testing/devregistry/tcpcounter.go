package devregistry

import (
	"net"
	"sync/atomic"
	"testing"
)

// TCPCounter is a listener on 127.0.0.1 standing for a service a registry
// must not make Stevedore reach (Postgres, an internal API): it accepts and
// closes connections and counts them. It closes when the test ends.
type TCPCounter struct {
	ln    net.Listener
	conns atomic.Int32
}

// NewTCPCounter starts a TCPCounter on a free port.
func NewTCPCounter(t testing.TB) *TCPCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &TCPCounter{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.conns.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

// Port is the port it listens on.
func (c *TCPCounter) Port() int { return c.ln.Addr().(*net.TCPAddr).Port }

// Conns is the number of connections it has accepted.
func (c *TCPCounter) Conns() int32 { return c.conns.Load() }
