package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/stevedore-dev/stevedore/internal/registry"
)

// Digest returns the digest ("sha256:…") the tag reference ref
// ("registry/repo:tag") points to: a HEAD request, or a GET when the
// registry's answer to HEAD has no digest or fails. A tag (or repository)
// the registry does not have, a 404 to both, is an error wrapping
// ErrInvalid (asking again does not help), as are a malformed reference
// and a registry the allowlist refuses. The requests go through the
// Resolver's registry client, so its attempts, Retry-After gates, limits
// and credentials apply; a client with one attempt leaves the retries to
// the caller.
func (r *Resolver) Digest(ctx context.Context, ref string) (string, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("resolve tag %s: %w: %w", ref, ErrInvalid, err)
	}
	if err := registry.ValidateRepository(tag.RepositoryStr()); err != nil {
		return "", fmt.Errorf("resolve tag %s: %w: %w", ref, ErrInvalid, err)
	}
	if err := r.check(ref, tag); err != nil {
		return "", err
	}
	var d string
	err = r.lookup(ctx, tag.Context(), func(opts []remote.Option) error {
		var err error
		d, err = digest(ctx, ref, tag, opts)
		return err
	})
	return d, err
}

// digest is Digest's lookup, with the remote options opts.
func digest(ctx context.Context, ref string, tag name.Tag, opts []remote.Option) (string, error) {
	desc, herr := remote.Head(tag, opts...)
	if herr == nil {
		return desc.Digest.String(), nil
	}
	if ctx.Err() != nil || refused(herr) {
		return "", fmt.Errorf("resolve tag %s: %w", ref, herr)
	}
	d, gerr := remote.Get(tag, opts...)
	if gerr != nil {
		if notFound(herr) && notFound(gerr) {
			return "", fmt.Errorf("resolve tag %s: no such tag in the registry (404): %w: %w", ref, ErrInvalid, gerr)
		}
		return "", fmt.Errorf("resolve tag %s: HEAD: %v; GET: %w", ref, herr, gerr)
	}
	return d.Digest.String(), nil
}

// notFound reports whether err is a registry's 404 answer (MANIFEST_UNKNOWN,
// NAME_UNKNOWN, or a HEAD answer without a body).
func notFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// refused reports whether the client refused to send a request (a
// disallowed redirect or address, a registry throttled for longer than the
// client waits): a GET after the HEAD would be refused as well.
func refused(err error) bool {
	return errors.Is(err, registry.ErrNotAllowed) || errors.Is(err, registry.ErrThrottled) || errors.Is(err, registry.ErrInvalidName)
}
