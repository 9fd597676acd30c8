// Package client talks to a Stevedore dispatcher's HTTP API.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stevedore-dev/stevedore/report"
)

// Client calls one server.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the server at base ("http://host:8080").
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
}

// Error is a non-2xx answer.
type Error struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) (int, error) {
	return c.doHeader(ctx, method, path, nil, body, out)
}

func (c *Client) doHeader(ctx context.Context, method, path string, header http.Header, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(raw, e) != nil {
			e.Message = strings.TrimSpace(string(raw))
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, e)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// IndexReference asks the server to index an image reference.
func (c *Client) IndexReference(ctx context.Context, ref, platform string) (*report.IndexResponse, error) {
	out := new(report.IndexResponse)
	_, err := c.do(ctx, http.MethodPost, "/api/v1/index", report.IndexRequest{Reference: ref, Platform: platform}, out)
	return out, err
}

// IndexManifest posts a Clair manifest and returns at once (it asks for
// "Prefer: respond-async"): the report as it is now, in Clair's shape.
func (c *Client) IndexManifest(ctx context.Context, m *report.Manifest) (*report.Report, error) {
	out := new(report.Report)
	_, err := c.doHeader(ctx, http.MethodPost, "/indexer/api/v1/index_report", http.Header{"Prefer": {"respond-async"}}, m, out)
	return out, err
}

// IndexManifestWait posts a Clair manifest as Clair's clients do: the server
// answers once the report is terminal (201), or when its wait ends (202, the
// report as it is then). It returns the report in Clair's shape and the
// status. The client's own timeout (New's http.Client) must exceed the
// server's wait.
func (c *Client) IndexManifestWait(ctx context.Context, m *report.Manifest) (*report.Report, int, error) {
	out := new(report.Report)
	status, err := c.do(ctx, http.MethodPost, "/indexer/api/v1/index_report", m, out)
	return out, status, err
}

// Report fetches the report of a manifest with Stevedore's fields (the
// native endpoint): an IndexPartial report as it is, with its reasons,
// attempt and next retry.
func (c *Client) Report(ctx context.Context, d report.Digest) (*report.Report, error) {
	out := new(report.Report)
	_, err := c.do(ctx, http.MethodGet, "/api/v1/reports/"+string(d), nil, out)
	return out, err
}

// ClairReport fetches the report of a manifest as Clair's clients see it.
func (c *Client) ClairReport(ctx context.Context, d report.Digest) (*report.Report, error) {
	out := new(report.Report)
	_, err := c.do(ctx, http.MethodGet, "/indexer/api/v1/index_report/"+string(d), nil, out)
	return out, err
}

// Done reports whether r is what Wait waits for: terminal and, unless it
// failed, made by the scanner set whose state is scannerState (the
// server's, GET index_state).
func Done(r *report.Report, scannerState string) bool {
	return r.State.Terminal() && (r.State == report.StateIndexError || r.ScannerState == scannerState)
}

// Wait polls the report of d until it reaches a terminal state made by the
// server's current scanner set (or ctx ends).
func (c *Client) Wait(ctx context.Context, d report.Digest, every time.Duration) (*report.Report, error) {
	return c.WaitWake(ctx, d, every, nil)
}

// WaitWake is Wait that reads the report as soon as wake is closed (or
// sent on), once: a caller that hears when the report is stored (a
// notification of the server's store, whose first look also covers a
// report stored before the wait) need not wait for the next poll. With a
// wake, the first read waits for it (or for the first poll) instead of
// being made at once, while the report is being made. A nil wake is Wait.
func (c *Client) WaitWake(ctx context.Context, d report.Digest, every time.Duration, wake <-chan struct{}) (*report.Report, error) {
	var state struct {
		State string `json:"state"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/indexer/api/v1/index_state", nil, &state); err != nil {
		return nil, err
	}
	t := time.NewTicker(every)
	defer t.Stop()
	if wake != nil {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for report of %s: %w", d, ctx.Err())
		case <-t.C:
		case <-wake:
			wake = nil
		}
	}
	for {
		r, err := c.Report(ctx, d)
		if err != nil {
			return nil, err
		}
		if Done(r, state.State) {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("wait for report of %s (last state %s): %w", d, r.State, ctx.Err())
		case <-t.C:
		case <-wake:
			wake = nil
		}
	}
}
