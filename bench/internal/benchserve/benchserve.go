// Package benchserve serves an HTTP handler on a loopback port for the bench
// commands.
package benchserve

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve serves h on a loopback listener, and returns its base URL
// ("http://127.0.0.1:PORT") and a function that closes the server.
func Serve(h http.Handler) (string, func() error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), srv.Close, nil
}
