package app

import (
	"net/http"
	"time"
)

// HTTPTimeouts bound the connections of the HTTP API server. Zero values
// take the defaults noted.
//
// WriteTimeout is a deadline for the whole answer, counted from the end of
// the request headers. A handler that legitimately needs longer (one that
// waits for a job, or streams a very large report) must extend its own
// deadlines with http.ResponseController.SetWriteDeadline (and
// SetReadDeadline when it reads the body late); every other handler is
// held to these bounds, so that a slow or idle client cannot keep a
// connection and its goroutine forever.
type HTTPTimeouts struct {
	// ReadHeaderTimeout bounds reading the request headers (default 10s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading the whole request, headers and body
	// (default 60s: the largest body the API takes is 4 MiB, which needs
	// no more than about 70 KiB/s to arrive in time).
	ReadTimeout time.Duration
	// WriteTimeout bounds the answer (default 60s; see above).
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request (default 120s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers (default 64 KiB).
	MaxHeaderBytes int
}

// Defaults of HTTPTimeouts.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultWriteTimeout      = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
)

// NewHTTPServer returns the server of the HTTP API: handler h with the
// timeouts and header limit of t (zero values: the defaults).
func NewHTTPServer(h http.Handler, t HTTPTimeouts) *http.Server {
	if t.MaxHeaderBytes <= 0 {
		t.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: orDefault(t.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(t.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDefault(t.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(t.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    t.MaxHeaderBytes,
	}
}
