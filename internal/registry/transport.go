package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// roundTripper is the Client's transport.
type roundTripper struct{ c *Client }

// RoundTrip sends req, waiting for the registry's gate and for a free slot,
// and sends it again after a 5xx, a 429 or a connection error, up to
// MaxAttempts times. The returned body holds the request's slot until it is
// closed or read to its end.
func (t *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	req, host, err := c.prepare(req)
	if err != nil {
		return nil, err
	}
	hs := c.host(host)
	ctx := req.Context()
	retriable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 1; ; attempt++ {
		last := attempt >= c.cfg.MaxAttempts || !retriable
		resp, retry, err := c.attempt(ctx, req, host, hs, attempt, last)
		if err != nil {
			return nil, err
		}
		if retry {
			continue
		}
		c.meter(ctx, resp, host, hs, req.URL.Path)
		return resp, nil
	}
}

// prepare checks req's path and, for a redirect hop, the redirect policy;
// it records in req's context whether its connection may reach a private
// address, switches it to plain HTTP when its registry is configured so,
// and returns it with its canonical host.
func (c *Client) prepare(req *http.Request) (*http.Request, string, error) {
	if err := checkPath(req.URL); err != nil {
		return nil, "", fmt.Errorf("registry %s: %w", req.URL.Host, err)
	}
	// Every hop of a redirect is checked as the first request is; a hop
	// to another host gets none of the headers the request was given, and
	// its address is checked at dial time unless the host is explicitly
	// allowed.
	// A first request may connect anywhere when there is no allowlist
	// (the caller named the host) or when its host is explicitly allowed;
	// with an allowlist, another host (a token realm a registry pointed
	// to) may not reach a private address either.
	privateOK := len(c.cfg.Allowlist) == 0 || c.explicit(req.URL.Host)
	if req.Response != nil {
		var err error
		if req, privateOK, err = c.redirectPolicy(req); err != nil {
			return nil, "", err
		}
	}
	req = req.WithContext(context.WithValue(req.Context(), dialPolicyKey{}, dialPolicy{privateOK: privateOK}))
	host := CanonicalHost(req.URL.Host)
	if req.URL.Scheme == "https" && c.hosts[host].PlainHTTP {
		req = req.Clone(req.Context())
		req.URL.Scheme = "http"
	}
	return req, host, nil
}

// attempt sends req once, after waiting for the registry's gate and for a
// free slot. It answers retry when the attempt failed in a way worth
// another (after waiting its delay, unless the gate now holds every
// request); a response it returns holds the slot.
func (c *Client) attempt(ctx context.Context, req *http.Request, host string, hs *hostState, attempt int, last bool) (resp *http.Response, retry bool, err error) {
	r, err := c.acquire(ctx, req, host, hs, attempt)
	if err != nil {
		return nil, false, err
	}
	resp, err = c.base.RoundTrip(r)
	if err != nil {
		hs.release()
		if err := c.retryAfterError(ctx, host, attempt, last, err); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	retry, err = c.retryAfterStatus(ctx, resp, host, hs, attempt, last)
	if err != nil || retry {
		return nil, retry, err
	}
	return resp, false, nil
}

// acquire waits for the registry's gate and a free slot, and returns the
// request to send: req itself, or after the first attempt a clone with its
// body rewound.
func (c *Client) acquire(ctx context.Context, req *http.Request, host string, hs *hostState, attempt int) (*http.Request, error) {
	if err := c.waitGate(ctx, host, hs); err != nil {
		return nil, err
	}
	if err := hs.acquire(ctx); err != nil {
		return nil, fmt.Errorf("registry %s: waiting for a free request slot: %w", host, err)
	}
	if attempt == 1 || req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		hs.release()
		return nil, fmt.Errorf("registry %s: rewind the request body for a retry: %w", host, err)
	}
	r := req.Clone(ctx)
	r.Body = body
	return r, nil
}

// retryAfterError returns err when a connection error is not worth another
// attempt, or waits the backoff delay and returns nil when it is.
func (c *Client) retryAfterError(ctx context.Context, host string, attempt int, last bool, err error) error {
	if last || ctx.Err() != nil || !retryableError(err) {
		return err
	}
	delay := c.backoff(attempt)
	c.countRetry(ctx, host, "connection")
	c.log.DebugContext(ctx, "registry request failed; retrying", "registry", host, "attempt", attempt, "delay", delay, "error", err)
	return sleep(ctx, delay)
}

// retryAfterStatus answers whether resp's status (a 429 or a 5xx) is worth
// another attempt. A 429 or a Retry-After closes the registry's gate for
// every request; otherwise it waits the backoff delay itself. When it
// answers retry it has drained and closed resp's body and released its
// slot.
func (c *Client) retryAfterStatus(ctx context.Context, resp *http.Response, host string, hs *hostState, attempt int, last bool) (bool, error) {
	status := resp.StatusCode
	if status != http.StatusTooManyRequests && !retryableStatus(status) {
		return false, nil
	}
	delay := c.backoff(attempt)
	ra, hasRA := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	gated := status == http.StatusTooManyRequests || hasRA
	if hasRA {
		delay = ra
	}
	if gated {
		// Every request to this registry waits, not only this one.
		c.throttle(ctx, host, hs, time.Now().Add(delay), status, resp.Header.Get("Retry-After"))
	}
	if last || delay > c.cfg.MaxRetryAfter {
		return false, nil
	}
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
	hs.release()
	c.countRetry(ctx, host, strconv.Itoa(status))
	c.log.DebugContext(ctx, "registry answered with a retryable status; retrying", "registry", host, "status", status, "attempt", attempt, "delay", delay)
	if !gated {
		if err := sleep(ctx, delay); err != nil {
			return false, err
		}
	}
	return true, nil
}

// meter wraps resp's body so that it releases the request's slot when it is
// closed or read to its end, and counts the bytes read by registry and kind.
func (c *Client) meter(ctx context.Context, resp *http.Response, host string, hs *hostState, path string) {
	resp.Body = &body{ReadCloser: resp.Body, release: hs.release, count: func(n int64) {
		if n > 0 {
			c.bytes.Add(context.WithoutCancel(ctx), n, metric.WithAttributes(
				attribute.String("registry", host), attribute.String("kind", kindOf(path))))
		}
	}}
}

func (c *Client) countRetry(ctx context.Context, host, reason string) {
	c.retries.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("registry", host), attribute.String("reason", reason)))
}

// throttle closes the registry's gate until t (it never moves it earlier).
func (c *Client) throttle(ctx context.Context, host string, hs *hostState, t time.Time, status int, header string) {
	hs.mu.Lock()
	moved := t.After(hs.notBefore)
	if moved {
		hs.notBefore = t
	}
	hs.mu.Unlock()
	if moved {
		c.log.WarnContext(ctx, "registry asked to slow down; holding every request to it", "registry", host, "status", status,
			"retry_after", header, "until", t.Format(time.RFC3339Nano))
	}
}

// waitGate waits until the registry's gate opens, or fails with
// ErrThrottled when it opens later than MaxRetryAfter from now.
func (c *Client) waitGate(ctx context.Context, host string, hs *hostState) error {
	for {
		hs.mu.Lock()
		nb := hs.notBefore
		hs.mu.Unlock()
		d := time.Until(nb)
		if d <= 0 {
			return nil
		}
		if d > c.cfg.MaxRetryAfter {
			return fmt.Errorf("registry %s: %w until %s, longer than the %s this client waits", host, ErrThrottled, nb.Format(time.RFC3339), c.cfg.MaxRetryAfter)
		}
		if err := sleep(ctx, d); err != nil {
			return fmt.Errorf("registry %s: waiting for its Retry-After: %w", host, err)
		}
	}
}

func (hs *hostState) acquire(ctx context.Context) error {
	select {
	case hs.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (hs *hostState) release() { <-hs.slots }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryableStatus is a server error worth sending the request again for.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryableError is a connection error worth sending the request again
// for: refused, reset, closed early, timed out, a temporary DNS failure. A
// TLS or protocol error (a plain-HTTP server asked for HTTPS) is not.
func retryableError(err error) bool {
	// The request's own context is checked by the caller; a
	// DeadlineExceeded here is a transport timeout (net/http's wait for
	// response headers matches it), worth another attempt.
	if errors.Is(err, context.Canceled) {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTimeout || dns.IsTemporary
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, io.ErrUnexpectedEOF, io.EOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// net/http's own connection errors are unexported: match their text.
	msg := err.Error()
	return strings.Contains(msg, "server closed idle connection") || strings.Contains(msg, "transport connection broken")
}

// kindOf names the kind of registry request a URL path is.
func kindOf(path string) string {
	switch {
	case strings.Contains(path, "/blobs/") && !strings.Contains(path, "/blobs/uploads"):
		return "blob"
	case strings.Contains(path, "/manifests/"):
		return "manifest"
	}
	return "other"
}

// body releases its request's slot when it is closed or read to its end,
// and reports the bytes read once.
type body struct {
	io.ReadCloser
	release func()
	count   func(int64)
	n       atomic.Int64
	once    sync.Once
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if err != nil {
		b.done()
	}
	return n, err
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

func (b *body) done() {
	b.once.Do(func() {
		b.release()
		b.count(b.n.Load())
	})
}
