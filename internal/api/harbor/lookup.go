package harbor

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/stevedore-dev/stevedore/internal/redact"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/report"
)

// lookup reads the artifact's manifest from the registry with the
// request's authorization, within ResolveTimeout, and returns it as the
// manifest to index: its layers' blob URLs, each carrying the
// authorization as its Authorization header (sent as given by the worker
// that fetches it, as Harbor's registry takes it: a robot account's basic
// credentials or a token of its token service).
func (h *Handler) lookup(ctx context.Context, t *scanTarget) (*report.Manifest, *requestError) {
	var secrets []string
	if t.authz != "" {
		secrets = redact.Secrets("", http.Header{"Authorization": {t.authz}})
	}
	fail := func(status int, format string, args ...any) *requestError {
		return &requestError{status, redact.Error(fmt.Errorf(format, args...), secrets...).Error()}
	}
	var opts []name.Option
	if t.registry.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	ref, err := registry.ParseReference(t.registry.Host+"/"+t.ref.Repository+"@"+string(t.ref.Digest), opts...)
	if err != nil {
		return nil, invalid("artifact: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.ResolveTimeout)
	defer cancel()
	rt := &authorizing{inner: h.cfg.Transport, host: t.registry.Host, authz: t.authz}
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithTransport(rt), remote.WithAuth(authn.Anonymous),
		remote.WithRetryStatusCodes(), remote.WithRetryPredicate(func(error) bool { return false }))
	if err != nil {
		var te *transport.Error
		switch {
		case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
			return nil, fail(http.StatusUnprocessableEntity, "registry.authorization: the registry refused it for %s (HTTP %d): %w", ref, te.StatusCode, err)
		case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
			return nil, fail(http.StatusUnprocessableEntity, "artifact: the registry has no manifest %s (HTTP 404): %w", ref, err)
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
			return nil, fail(http.StatusInternalServerError, "read manifest %s: the registry did not answer within %s", ref, h.cfg.ResolveTimeout)
		}
		return nil, fail(http.StatusInternalServerError, "read manifest %s: %w", ref, err)
	}
	if !desc.MediaType.IsImage() {
		return nil, unsupported("artifact %s is a %s, not an image manifest (%s, %s)", ref, desc.MediaType, MimeOCIManifest, MimeDockerManifest)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fail(http.StatusInternalServerError, "read manifest %s: %w", ref, err)
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, fail(http.StatusInternalServerError, "read manifest %s: %w", ref, err)
	}
	if c := mf.Config.MediaType; c != types.DockerConfigJSON && c != types.OCIConfigJSON {
		return nil, unsupported("artifact %s is not a container image: its config is %s", ref, c)
	}
	m := &report.Manifest{Hash: report.Digest(desc.Digest.String())}
	for _, l := range mf.Layers {
		layer := &report.Layer{Hash: report.Digest(l.Digest.String()), URI: resolve.BlobURL(ref.Context(), l.Digest.String()),
			MediaType: string(l.MediaType), Size: l.Size}
		if t.authz != "" {
			layer.Headers = http.Header{"Authorization": {t.authz}}
		}
		m.Layers = append(m.Layers, layer)
	}
	if m.Hash != t.ref.Digest {
		return nil, fail(http.StatusInternalServerError, "read manifest %s: the registry answered %s", ref, m.Hash)
	}
	if err := m.Validate(); err != nil {
		return nil, unsupported("artifact %s: %v", ref, err)
	}
	return m, nil
}

// authorizing adds the request's Authorization to every request to its
// registry's host that has none (go-containerregistry's own, a token it got
// for it, goes first); never to another host, such as a redirect's.
type authorizing struct {
	inner http.RoundTripper
	host  string
	authz string
}

func (a *authorizing) RoundTrip(req *http.Request) (*http.Response, error) {
	if a.authz == "" || req.URL.Host != a.host || req.Header.Get("Authorization") != "" {
		return a.inner.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", a.authz)
	return a.inner.RoundTrip(r)
}
