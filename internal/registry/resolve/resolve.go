// Package resolve turns an image reference ("registry/repo:tag") into the
// manifests to index, with go-containerregistry: an image index yields one
// manifest per platform (or only the platform asked for). It also looks up
// the digest a tag points to (Digest), for the webhooks.
//
// Every request goes through a registry client (internal/registry): its
// credentials (per-registry settings, then the Docker config), request
// limits, retries and Retry-After gates, and its allowlist, checked before
// anything is sent.
package resolve

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/report"
)

// ErrInvalid marks a request that cannot be satisfied as asked: a malformed
// reference or platform, a platform the image does not have, a registry
// the allowlist refuses, a tag the registry does not have.
var ErrInvalid = errors.New("invalid image request")

// ErrRegistryNotAllowed is wrapped by the error of a request that names a
// registry outside the allowlist (with ErrInvalid: sending it again does
// not help until the allowlist changes). The dispatcher's check and the
// Resolver's are one error (intake.ErrRegistryNotAllowed is this one).
var ErrRegistryNotAllowed = fmt.Errorf("registry not allowed: %w", ErrInvalid)

// Resolver looks up image references through a registry client.
type Resolver struct {
	client *registry.Client

	// pullers are the repositories' authenticated transports, reused by
	// lookups for registry.AuthTTL (see lookup).
	pullers registry.AuthCache[*remote.Puller]
}

// Option configures a Resolver.
type Option func(*Resolver)

// WithClient sets the registry client requests go through (default:
// registry.New with the default settings: no allowlist, the Docker
// config's credentials). A process gives every Resolver its one client, or
// a view of it (registry.Client.WithMaxAttempts).
func WithClient(c *registry.Client) Option { return func(r *Resolver) { r.client = c } }

// New returns a Resolver.
func New(opts ...Option) *Resolver {
	r := &Resolver{}
	for _, o := range opts {
		o(r)
	}
	if r.client == nil {
		r.client = registry.New(registry.Config{})
	}
	return r
}

// remoteOptions are the options of one lookup: the client's transport,
// credentials and retries.
func (r *Resolver) remoteOptions(ctx context.Context) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx)}, r.client.RemoteOptions()...)
}

// check refuses a reference to a registry the client's allowlist refuses.
func (r *Resolver) check(ref string, parsed name.Reference) error {
	if err := r.client.CheckAllowed(parsed.Context().RegistryStr()); err != nil {
		return fmt.Errorf("resolve %q: %w: %w", ref, ErrRegistryNotAllowed, err)
	}
	return nil
}

// Image is one platform's manifest of a reference.
type Image struct {
	Reference string
	Platform  string
	Manifest  *report.Manifest
}

// Resolve looks ref up and returns the manifests to index. platform
// ("linux/amd64", "linux/arm64/v8") selects one entry of an image index; empty
// means every platform. Attestation manifests ("unknown/unknown") are skipped.
func (r *Resolver) Resolve(ctx context.Context, ref, platform string) ([]Image, error) {
	// Every repository and reference is checked before any request: the
	// transport (regclient) refuses a bad path too, but the caller is told
	// here that the reference is invalid.
	parsed, err := registry.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w: %w", ref, ErrInvalid, err)
	}
	var want *v1.Platform
	if platform != "" {
		if want, err = v1.ParsePlatform(platform); err != nil {
			return nil, fmt.Errorf("resolve %q: platform %q: %w: %w", ref, platform, ErrInvalid, err)
		}
	}
	if err := r.check(ref, parsed); err != nil {
		return nil, err
	}
	var out []Image
	err = r.lookup(ctx, parsed.Context(), func(opts []remote.Option) error {
		var err error
		out, err = resolve(ref, parsed, platform, want, opts)
		return err
	})
	return out, err
}

// resolve is Resolve's lookup, with the remote options opts.
func resolve(ref string, parsed name.Reference, platform string, want *v1.Platform, opts []remote.Option) ([]Image, error) {
	desc, err := remote.Get(parsed, opts...)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", ref, err)
	}
	repo := parsed.Context()
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("resolve %q: %w", ref, err)
		}
		im, err := imageManifest(repo, desc.Digest, img)
		if err != nil {
			return nil, fmt.Errorf("resolve %q: %w", ref, err)
		}
		var p *v1.Platform
		if cf, err := img.ConfigFile(); err == nil {
			p = cf.Platform()
		}
		if want != nil && p != nil && !p.Satisfies(*want) {
			return nil, fmt.Errorf("resolve %q: image is %s, not %s: %w", ref, p, platform, ErrInvalid)
		}
		ps := ""
		if p != nil {
			ps = p.String()
		}
		return []Image{{Reference: ref, Platform: ps, Manifest: im}}, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", ref, err)
	}
	var out []Image
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() || d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		if want != nil && !d.Platform.Satisfies(*want) {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("resolve %q: platform %s: %w", ref, d.Platform, err)
		}
		m, err := imageManifest(repo, d.Digest, img)
		if err != nil {
			return nil, fmt.Errorf("resolve %q: platform %s: %w", ref, d.Platform, err)
		}
		out = append(out, Image{Reference: ref, Platform: d.Platform.String(), Manifest: m})
	}
	if len(out) == 0 {
		if want != nil {
			return nil, fmt.Errorf("resolve %q: no manifest for platform %s in the image index: %w", ref, platform, ErrInvalid)
		}
		return nil, fmt.Errorf("resolve %q: the image index lists no image manifests", ref)
	}
	return out, nil
}

// imageManifest lists an image's layers with their blob URLs in repo.
func imageManifest(repo name.Repository, d v1.Hash, img v1.Image) (*report.Manifest, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	out := &report.Manifest{Hash: report.Digest(d.String())}
	for _, l := range m.Layers {
		out.Layers = append(out.Layers, &report.Layer{
			Hash:      report.Digest(l.Digest.String()),
			URI:       BlobURL(repo, l.Digest.String()),
			MediaType: string(l.MediaType),
			Size:      l.Size,
		})
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// BlobURL is the registry URL of a blob in repo.
func BlobURL(repo name.Repository, digest string) string {
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), digest)
}
