package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"
)

// ErrNotAllowed is wrapped by the error of a request the client refused to
// send: a redirect to a host that is neither allowed nor a redirect host,
// or a connection to a loopback, private, link-local, multicast,
// unspecified or cloud-metadata address for a host not explicitly allowed.
// It is permanent.
var ErrNotAllowed = errors.New("destination not allowed")

// RedirectHosts lists the hosts registries may redirect blob downloads to
// (object storage handing out presigned URLs), as host (any port) or
// host:port; an entry "*.example.com" matches every subdomain of
// example.com. Requests
// redirected there carry no credentials and none of the headers the
// request was given. It is a flag.Value: Set takes a comma-separated list.
type RedirectHosts []string

// String implements flag.Value.
func (r RedirectHosts) String() string { return strings.Join(r, ",") }

// Set implements flag.Value: it adds the comma-separated hosts in v.
func (r *RedirectHosts) Set(v string) error {
	for _, h := range strings.Split(v, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if err := validRedirectHost(h); err != nil {
			return fmt.Errorf("%q: %w", h, err)
		}
		if !slices.Contains(*r, h) {
			*r = append(*r, h)
		}
	}
	return nil
}

func validRedirectHost(h string) error {
	return validHost(strings.TrimPrefix(h, "*."))
}

// Allows reports whether host (host[:port]) is one of the redirect hosts.
// An empty list allows none.
func (r RedirectHosts) Allows(host string) bool {
	host = strings.ToLower(host)
	bare := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		bare = hh
	}
	for _, e := range r {
		if suffix, ok := strings.CutPrefix(e, "*."); ok {
			if strings.HasSuffix(bare, "."+suffix) || strings.HasSuffix(host, "."+suffix) {
				return true
			}
			continue
		}
		if e == host || !strings.Contains(e, ":") && e == bare {
			return true
		}
	}
	return false
}

// explicit reports whether host was named by the operator: in a non-empty
// allowlist, among the redirect hosts, or configured per registry (its
// settings or a mirror). An explicit host may resolve to any address,
// loopback and private ones included (a registry on 127.0.0.1 in
// development, object storage on a private network).
func (c *Client) explicit(host string) bool {
	ch := CanonicalHost(host)
	if len(c.cfg.Allowlist) > 0 && c.cfg.Allowlist.Allows(ch) {
		return true
	}
	if c.cfg.RedirectHosts.Allows(ch) {
		return true
	}
	if _, ok := c.hosts[ch]; ok {
		return true
	}
	for _, s := range c.hosts {
		for _, m := range s.Mirrors {
			if u, err := parseMirror(m); err == nil && CanonicalHost(u.Host) == ch {
				return true
			}
		}
	}
	return false
}

// redirectPolicy checks a redirected request (req.Response is set) exactly
// as the first one is checked, and returns the request to send: without
// the headers the first request was given when it goes to another host,
// and whether its connection may go to a private address.
func (c *Client) redirectPolicy(req *http.Request) (*http.Request, bool, error) {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	from, to := CanonicalHost(first.URL.Host), CanonicalHost(req.URL.Host)
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, false, fmt.Errorf("redirect from %s to a %q URL: %w", from, req.URL.Scheme, ErrNotAllowed)
	}
	if from == to {
		return req, true, nil
	}
	explicit := c.explicit(to)
	if len(c.cfg.Allowlist) > 0 && !explicit {
		return nil, false, fmt.Errorf("redirect from %s to %s: %s is neither an allowed registry (%s) nor a redirect host (%s): %w",
			from, to, to, c.cfg.Allowlist, c.cfg.RedirectHosts, ErrNotAllowed)
	}
	// Headers a request was given go to its own host only: credentials,
	// and whatever a Clair manifest's layer asked to send.
	r := req.Clone(req.Context())
	r.Header = make(http.Header)
	for _, k := range []string{"User-Agent", "Accept", "Accept-Encoding", "Range"} {
		if v, ok := req.Header[k]; ok {
			r.Header[k] = v
		}
	}
	return r, explicit, nil
}

// dialPolicy, in a request's context, says whether its connection may go
// to a loopback, private or link-local address.
type dialPolicy struct{ privateOK bool }

type dialPolicyKey struct{}

// baseTransport is the default transport under the client: a clone of
// http.DefaultTransport whose connections are checked at dial time, after
// name resolution (a host name that resolves to 127.0.0.1 is caught).
func (c *Client) baseTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = c.cfg.ResponseHeaderTimeout
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		if p, ok := ctx.Value(dialPolicyKey{}).(dialPolicy); !ok || !p.privateOK {
			d.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
				return CheckAddress(address)
			}
		}
		return d.DialContext(ctx, network, addr)
	}
	return t
}

// metadata are cloud metadata services' addresses (AWS, GCP, Azure,
// OpenStack: 169.254.169.254; AWS over IPv6: fd00:ec2::254; Alibaba:
// 100.100.100.200).
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("100.100.100.200"),
}

// special are ranges no registry redirect should lead to, beyond what
// netip's predicates name: "this network", shared address space (CGNAT),
// IETF protocol assignments, benchmarking, reserved, broadcast.
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("240.0.0.0/4"),
}

// CheckAddress refuses (ErrNotAllowed) an ip:port that is loopback,
// private, link-local, multicast, unspecified, a cloud metadata address or
// another special-purpose range. IPv4-mapped IPv6 addresses are checked as
// IPv4.
func CheckAddress(hostport string) error {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		h = hostport
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return fmt.Errorf("address %q is not an IP address: %w", hostport, ErrNotAllowed)
	}
	ip = ip.Unmap().WithZone("")
	var kind string
	switch {
	case slices.Contains(metadata, ip):
		kind = "a cloud metadata"
	case ip.IsLoopback():
		kind = "a loopback"
	case ip.IsPrivate():
		kind = "a private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		kind = "a link-local"
	case ip.IsUnspecified():
		kind = "an unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		kind = "a multicast"
	default:
		for _, p := range special {
			if p.Contains(ip) {
				kind = "a special-purpose"
			}
		}
	}
	if kind == "" {
		return nil
	}
	return fmt.Errorf("connection to %s is refused: %s address, and the host is not explicitly allowed (registry allowlist, redirect hosts, registry settings): %w", hostport, kind, ErrNotAllowed)
}
