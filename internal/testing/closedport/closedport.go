// Package closedport gives tests a loopback port where nothing listens, so
// that a connection to it is refused at once: a server that is down.
package closedport

import (
	"net"
	"strconv"
	"testing"
)

// Port returns a loopback TCP port that was free a moment ago and where
// nothing listens now.
func Port(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// Addr returns "127.0.0.1:PORT" for a Port.
func Addr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(Port(t))
}
