// Package resolve turns an image reference ("registry/repo:tag") into the
// manifests to index, with go-containerregistry: an image index yields one
// manifest per platform (or only the platform asked for).
package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/report"
)

// ErrInvalid marks a request that cannot be satisfied as asked: a malformed
// reference or platform, or a platform the image does not have.
var ErrInvalid = errors.New("invalid image request")

// Resolver looks up image references.
type Resolver struct {
	keychain  authn.Keychain
	transport http.RoundTripper
	remote    []remote.Option
}

// Option configures a Resolver.
type Option func(*Resolver)

// WithKeychain sets where registry credentials come from (default
// authn.DefaultKeychain).
func WithKeychain(k authn.Keychain) Option { return func(r *Resolver) { r.keychain = k } }

// WithTransport sets the HTTP transport.
func WithTransport(rt http.RoundTripper) Option { return func(r *Resolver) { r.transport = rt } }

// WithRemoteOptions adds options for go-containerregistry's remote package,
// applied after the keychain and transport (registry.Client.RemoteOptions:
// its transport, keychain and retries).
func WithRemoteOptions(opts ...remote.Option) Option {
	return func(r *Resolver) { r.remote = append(r.remote, opts...) }
}

// New returns a Resolver.
func New(opts ...Option) *Resolver {
	r := &Resolver{keychain: authn.DefaultKeychain, transport: remote.DefaultTransport}
	for _, o := range opts {
		o(r)
	}
	return r
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
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(r.keychain), remote.WithTransport(r.transport)}
	opts = append(opts, r.remote...)
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
