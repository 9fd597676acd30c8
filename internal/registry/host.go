package registry

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// hostPattern is a registry host as references name it, lower case: a DNS
// name (labels of letters, digits, '-' and '_', not starting or ending
// with '-' or '_'), an IPv4 address, or a bracketed IPv6 address, with an
// optional port.
var hostPattern = regexp.MustCompile(`^([a-z0-9](?:[a-z0-9_-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)*|\[([0-9a-f:.]+)\])(?::([0-9]+))?$`)

// dockerHub are Docker Hub's names; NormalizeHost folds them into
// go-containerregistry's name.DefaultRegistry (index.docker.io).
var dockerHub = []string{"docker.io", "index.docker.io", "registry-1.docker.io"}

// NormalizeHost is the one normaliser of registry hosts (host[:port]):
// every allowlist (Allowlist, the webhooks' registries), the per-registry
// settings and the client's per-registry state compare hosts in its form.
// It lowers the case, trims surrounding spaces, folds Docker Hub's names
// (docker.io, index.docker.io, registry-1.docker.io) into index.docker.io,
// and refuses what is not a host[:port]: a scheme, a path, user
// information, an unbracketed IPv6 address, a port out of 1-65535 or
// written with a leading zero, and a trailing dot.
//
// Some forms name the same server and are still kept apart, because
// refusing is the safer answer for an allowlist:
//   - a port is kept as written: "host" and "host:443" are different
//     hosts (a plain-HTTP registry "host" is on port 80), so an entry
//     allows exactly the endpoint it names;
//   - a fully qualified name with a trailing dot ("host.") is refused
//     rather than folded into "host".
func NormalizeHost(s string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(s))
	if h == "" {
		return "", errors.New("empty registry host")
	}
	if strings.HasSuffix(h, ".") || strings.Contains(h, ".:") {
		return "", fmt.Errorf("%q: a registry host with a trailing dot is refused: name it without the dot", s)
	}
	m := hostPattern.FindStringSubmatch(h)
	if m == nil {
		return "", fmt.Errorf("%q is not a registry host[:port]: want host[:port], without a scheme or a path (a DNS name, an IPv4 address or a bracketed IPv6 address, and an optional port)", s)
	}
	if m[2] != "" {
		if _, err := netip.ParseAddr(m[2]); err != nil {
			return "", fmt.Errorf("%q: %q is not an IPv6 address", s, m[2])
		}
	}
	if p := m[3]; p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return "", fmt.Errorf("%q: port %q: want 1 to 65535, without leading zeros", s, p)
		}
	}
	if _, err := name.NewRegistry(h, name.StrictValidation); err != nil {
		return "", fmt.Errorf("%q is not a registry host: %w", s, err)
	}
	for _, d := range dockerHub {
		if h == d {
			return name.DefaultRegistry, nil
		}
	}
	return h, nil
}

// CanonicalHost is NormalizeHost for hosts taken from requests (a URL's
// host): the normal form of a valid host, and otherwise the host lowered
// and marked invalid, so that it equals no valid host (an allowlist never
// allows it) while still naming one registry's state.
func CanonicalHost(h string) string {
	n, err := NormalizeHost(h)
	if err != nil {
		return invalidHostPrefix + strings.ToLower(strings.TrimSpace(h))
	}
	return n
}

// invalidHostPrefix starts the CanonicalHost of an invalid host: no valid
// host starts with '!'.
const invalidHostPrefix = "!"

// validHost checks a registry name: host[:port], no scheme, no path.
func validHost(h string) error {
	_, err := NormalizeHost(h)
	return err
}
