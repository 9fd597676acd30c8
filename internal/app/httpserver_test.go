package app_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/app"
)

// serve runs app.NewHTTPServer with timeouts t on a loopback port.
func serve(t *testing.T, tm app.HTTPTimeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := app.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	}), tm)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// closedByServer reads from c until the server closes it, and fails the
// test if that does not happen within limit (far longer than the server's
// timeouts: it only catches a connection that is never closed).
func closedByServer(t *testing.T, c net.Conn, limit time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept the connection open for %s", limit)
	}
}

func TestHTTPServerClosesSlowAndIdleConnections(t *testing.T) {
	tm := app.HTTPTimeouts{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond,
		WriteTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}
	addr := serve(t, tm)
	for _, tc := range []struct {
		name string
		send func(t *testing.T, c net.Conn)
	}{
		{"slow body", func(t *testing.T, c net.Conn) {
			// Headers promise 4 KiB; one byte of the body arrives, then nothing.
			io.WriteString(c, "POST /indexer/api/v1/index_report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{")
		}},
		{"slow headers", func(t *testing.T, c net.Conn) {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
		}},
		{"idle keep-alive", func(t *testing.T, c net.Conn) {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "ok" || resp.Close {
				t.Fatalf("first request: %d %q close=%v", resp.StatusCode, body, resp.Close)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc.send(t, c)
			closedByServer(t, c, 20*time.Second)
		})
	}
}

func TestHTTPServerRefusesOversizedHeaders(t *testing.T) {
	addr := serve(t, app.HTTPTimeouts{})
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 2*app.DefaultMaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("HTTP %d, want 431", resp.StatusCode)
	}
}

func TestHTTPServerDefaults(t *testing.T) {
	srv := app.NewHTTPServer(http.NotFoundHandler(), app.HTTPTimeouts{})
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout} {
		if d <= 0 {
			t.Errorf("%s is %s: a connection could stay open forever", name, d)
		}
	}
	if srv.ReadTimeout < 30*time.Second {
		t.Errorf("ReadTimeout %s: too short for a 4 MiB body on a slow link", srv.ReadTimeout)
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes %d", srv.MaxHeaderBytes)
	}
}
