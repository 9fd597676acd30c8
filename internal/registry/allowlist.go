package registry

import (
	"fmt"
	"slices"
	"strings"
)

// Allowlist is the registries (host[:port]) that requests may name. An
// empty Allowlist allows every registry. Entries and hosts are compared in
// NormalizeHost's form: case does not matter, "docker.io" stands for
// Docker Hub under any of its names, a port is part of the host, and a host
// NormalizeHost refuses is never allowed. It is a flag.Value: Set takes a comma-separated
// list and adds to what is there.
type Allowlist []string

// String implements flag.Value.
func (a Allowlist) String() string { return strings.Join(a, ",") }

// Set implements flag.Value: it adds the comma-separated hosts in v.
func (a *Allowlist) Set(v string) error {
	for _, h := range strings.Split(v, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if err := validHost(h); err != nil {
			return fmt.Errorf("%q: %w", h, err)
		}
		if !slices.Contains(*a, h) {
			*a = append(*a, h)
		}
	}
	return nil
}

// Allows reports whether host (host[:port]) may be named. An empty list
// allows every host.
func (a Allowlist) Allows(host string) bool {
	if len(a) == 0 {
		return true
	}
	c, err := NormalizeHost(host)
	if err != nil {
		return false
	}
	for _, h := range a {
		if e, err := NormalizeHost(h); err == nil && e == c {
			return true
		}
	}
	return false
}
