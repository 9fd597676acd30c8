package intake

import (
	"fmt"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/report"
)

// ErrRegistryNotAllowed is wrapped by the error of a request that names a
// registry outside the allowlist: an image reference, or the host of a
// layer's URI. It also wraps resolve.ErrInvalid (the request cannot be
// satisfied as asked; sending it again does not help).
var ErrRegistryNotAllowed = resolve.ErrRegistryNotAllowed

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithAllowlist makes the dispatcher refuse requests that name a registry
// not in a: image references to another registry, and manifests with a
// layer URI on another host, so that a webhook or an API caller cannot
// point workers at arbitrary hosts. An empty list allows every registry.
func WithAllowlist(a registry.Allowlist) Option { return func(d *Dispatcher) { d.allow = a } }

// AllowsRegistry reports whether the allowlist lets requests name the
// registry host (always, when no allowlist is set): the webhook endpoints
// check an event's registry with it before they queue anything.
func (d *Dispatcher) AllowsRegistry(host string) bool {
	return len(d.allow) == 0 || d.allow.Allows(host)
}

// checkReference refuses an image reference to a registry not allowed.
func (d *Dispatcher) checkReference(ref string) error {
	if len(d.allow) == 0 {
		return nil
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("resolve %q: %w: %w", ref, resolve.ErrInvalid, err)
	}
	if host := r.Context().RegistryStr(); !d.allow.Allows(host) {
		return fmt.Errorf("reference %q: registry %q is not allowed (allowed: %s): %w", ref, host, d.allow.String(), ErrRegistryNotAllowed)
	}
	return nil
}

// checkLayers refuses a manifest with a layer URI on a host not allowed.
func (d *Dispatcher) checkLayers(m *report.Manifest) error {
	if len(d.allow) == 0 {
		return nil
	}
	for i, l := range m.Layers {
		u, err := url.Parse(l.URI)
		if err != nil {
			return fmt.Errorf("layers[%d].uri: %w: %w", i, resolve.ErrInvalid, err)
		}
		if !d.allow.Allows(u.Host) {
			return fmt.Errorf("layers[%d].uri: registry %q is not allowed (allowed: %s): %w", i, u.Host, d.allow.String(), ErrRegistryNotAllowed)
		}
	}
	return nil
}

// Allowed reports whether every layer URI of m names a registry the
// dispatcher may fetch from, as Index checks first: a caller that answers a
// current report without Index (the API's stored answers) checks it too.
func (d *Dispatcher) Allowed(m *report.Manifest) bool { return d.checkLayers(m) == nil }
