package harbor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/redact"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/report"
)

// ScanRequest is the spec's ScanRequest. Fields Harbor sends beyond the
// spec (registry.insecure, artifact.size, ...) are ignored.
type ScanRequest struct {
	Registry            *Registry           `json:"registry"`
	Artifact            *Artifact           `json:"artifact"`
	EnabledCapabilities []EnabledCapability `json:"enabled_capabilities,omitempty"`
}

// Registry is the spec's Registry: where to pull the artifact from, and the
// value of the Authorization header to send there.
type Registry struct {
	URL           string `json:"url"`
	Authorization string `json:"authorization,omitempty"`
}

// Artifact is the spec's Artifact.
type Artifact struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Tag        string `json:"tag,omitempty"`
	MimeType   string `json:"mime_type,omitempty"`
}

// EnabledCapability is one item of a ScanRequest's enabled_capabilities.
type EnabledCapability struct {
	Type              string          `json:"type"`
	ProducesMimeTypes []string        `json:"produces_mime_types,omitempty"`
	Parameters        *SBOMParameters `json:"parameters,omitempty"`
}

// SBOMParameters are the parameters of the sbom capability.
type SBOMParameters struct {
	SBOMMediaTypes []string `json:"sbom_media_types,omitempty"`
}

// ScanResponse answers an accepted scan request.
type ScanResponse struct {
	ID string `json:"id"`
}

// requestError is a refusal: its status and a message saying what is wrong
// and where (the field's path), never quoting the authorization.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func invalid(format string, args ...any) *requestError {
	return &requestError{http.StatusUnprocessableEntity, fmt.Sprintf(format, args...)}
}

func unsupported(format string, args ...any) *requestError {
	return &requestError{http.StatusNotImplemented, fmt.Sprintf(format, args...)}
}

// ServeScan answers POST /api/v1/scan: the request is validated (400 for a
// body that is not a ScanRequest, 422 for an invalid field, 501 for what
// Stevedore cannot do), the manifest is read from the registry with the
// request's authorization and queued for indexing, and the answer is 202
// with the scan request id.
func (h *Handler) ServeScan(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(w, r) {
		return
	}
	req, rerr := decodeScanRequest(w, r)
	if rerr == nil {
		var id string
		id, rerr = h.scan(r.Context(), req)
		if rerr == nil {
			writeJSON(w, http.StatusAccepted, MimeScanResponse, ScanResponse{ID: id})
			return
		}
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		return
	}
	if rerr.status >= 500 && rerr.status != http.StatusNotImplemented {
		h.log.ErrorContext(r.Context(), "harbor scan request failed", "status", rerr.status, "error", rerr.msg)
	}
	writeError(w, rerr.status, rerr.msg)
}

// decodeScanRequest reads the body: JSON (any +json type, as Harbor's
// application/vnd.scanner.adapter.scan.request+json), at most maxBody
// bytes, one document.
func decodeScanRequest(w http.ResponseWriter, r *http.Request) (*ScanRequest, *requestError) {
	bad := func(format string, args ...any) *requestError {
		return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, bad("Content-Type %q: want application/vnd.scanner.adapter.scan.request+json; version=1.0", ct)
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	req := new(ScanRequest)
	if err := dec.Decode(req); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		var big *http.MaxBytesError
		switch {
		case errors.As(err, &big):
			return nil, bad("request body is larger than %d bytes", big.Limit)
		case errors.As(err, &syn):
			return nil, bad("request body: invalid JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			return nil, bad("request body: field %q: %s is not a valid %s (byte %d)", typ.Field, typ.Value, typ.Type, typ.Offset)
		case errors.Is(err, io.EOF):
			return nil, bad("request body is empty: want a ScanRequest")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, bad("request body: invalid JSON: the document ends early")
		}
		return nil, bad("request body: %v", err)
	}
	if dec.More() {
		return nil, bad("request body: more than one JSON document")
	}
	return req, nil
}

// scanTarget is a validated scan request.
type scanTarget struct {
	registry *url.URL
	authz    string
	ref      scanRef
}

// tagPattern is the distribution specification's tag grammar.
var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// validate checks every field Stevedore uses.
func validate(req *ScanRequest) (*scanTarget, *requestError) {
	if req.Registry == nil {
		return nil, invalid("registry: required")
	}
	if req.Artifact == nil {
		return nil, invalid("artifact: required")
	}
	u, rerr := validateRegistryURL(req.Registry.URL)
	if rerr != nil {
		return nil, rerr
	}
	if err := validateAuthorization(req.Registry.Authorization); err != nil {
		return nil, err
	}
	a := req.Artifact
	if a.Repository == "" {
		return nil, invalid("artifact.repository: required, e.g. library/debian")
	}
	if err := registry.ValidateRepository(a.Repository); err != nil {
		return nil, invalid("artifact.repository: %v", err)
	}
	d, err := report.ParseDigest(a.Digest)
	if err != nil {
		return nil, invalid("artifact.digest: %v", err)
	}
	if a.Tag != "" && !tagPattern.MatchString(a.Tag) {
		return nil, invalid("artifact.tag: %q is not a tag (letters, digits, '_', '.', '-'; at most 128)", a.Tag)
	}
	switch a.MimeType {
	case "", MimeOCIManifest, MimeDockerManifest:
	default:
		return nil, unsupported("artifact.mime_type %q: Stevedore indexes image manifests (%s, %s)", a.MimeType, MimeOCIManifest, MimeDockerManifest)
	}
	types, rerr := sbomMediaTypes(req.EnabledCapabilities)
	if rerr != nil {
		return nil, rerr
	}
	return &scanTarget{registry: u, authz: req.Registry.Authorization,
		ref: scanRef{Digest: d, MediaTypes: types, Repository: a.Repository, Tag: a.Tag, MimeType: a.MimeType}}, nil
}

// validateRegistryURL checks registry.url: an absolute http(s) URL of a
// registry's base (no path, credentials, query or fragment).
func validateRegistryURL(raw string) (*url.URL, *requestError) {
	if raw == "" {
		return nil, invalid("registry.url: required, e.g. https://core.harbor.domain")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, invalid("registry.url %q: want an absolute http(s) URL such as https://core.harbor.domain", redact.URL(raw))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return nil, invalid("registry.url %q: want the registry's base URL, without a path, credentials, query or fragment", redact.URL(raw))
	}
	if u.Hostname() == "" {
		return nil, invalid("registry.url %q: no host", redact.URL(raw))
	}
	return u, nil
}

// validateAuthorization checks registry.authorization: empty, or Basic
// credentials (base64 of user:password) or a Bearer token, as Harbor sends
// them (src/pkg/scan/job.go). The message never quotes it.
func validateAuthorization(v string) *requestError {
	if v == "" {
		return nil
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return invalid("registry.authorization: contains control characters")
		}
	}
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok || strings.TrimSpace(cred) == "" {
		return invalid("registry.authorization: want \"Basic <base64 user:password>\" or \"Bearer <token>\"")
	}
	switch {
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return invalid("registry.authorization: Basic credentials are not base64")
		}
		if user, _, ok := strings.Cut(string(raw), ":"); !ok || user == "" {
			return invalid("registry.authorization: Basic credentials are not user:password")
		}
	case strings.EqualFold(scheme, "Bearer"):
	default:
		return invalid("registry.authorization: scheme %q: want Basic or Bearer", scheme)
	}
	return nil
}

// sbomMediaTypes reads enabled_capabilities: the SBOM media types asked
// for. Without the field every capability is enabled (the spec): both
// media types. A request that enables no sbom capability asks for what
// Stevedore does not do (501).
func sbomMediaTypes(caps []EnabledCapability) ([]string, *requestError) {
	if len(caps) == 0 {
		return []string{MediaTypeSPDX, MediaTypeCycloneDX}, nil
	}
	var out []string
	found := false
	for i, c := range caps {
		switch c.Type {
		case "sbom":
		case "vulnerability":
			continue
		case "":
			return nil, invalid("enabled_capabilities[%d].type: required (sbom)", i)
		default:
			return nil, invalid("enabled_capabilities[%d].type %q: want sbom or vulnerability", i, c.Type)
		}
		found = true
		if len(c.ProducesMimeTypes) > 0 && !slices.Contains(c.ProducesMimeTypes, MimeSBOMReport) {
			return nil, unsupported("enabled_capabilities[%d].produces_mime_types %q: Stevedore produces %s", i, c.ProducesMimeTypes, MimeSBOMReport)
		}
		var types []string
		if c.Parameters != nil {
			types = c.Parameters.SBOMMediaTypes
		}
		if len(types) == 0 {
			types = []string{MediaTypeSPDX, MediaTypeCycloneDX}
		}
		for j, t := range types {
			if t != MediaTypeSPDX && t != MediaTypeCycloneDX {
				return nil, invalid("enabled_capabilities[%d].parameters.sbom_media_types[%d] %q: want %s or %s", i, j, t, MediaTypeSPDX, MediaTypeCycloneDX)
			}
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	if !found {
		return nil, unsupported("enabled_capabilities: Stevedore has the sbom capability only (no vulnerability scanning)")
	}
	slices.Sort(out)
	return out, nil
}

// scan validates the request, reads the manifest and queues it.
func (h *Handler) scan(ctx context.Context, req *ScanRequest) (string, *requestError) {
	t, rerr := validate(req)
	if rerr != nil {
		return "", rerr
	}
	if h.d == nil {
		return "", &requestError{http.StatusInternalServerError, "this server has no dispatcher"}
	}
	if !h.d.AllowsRegistry(t.registry.Host) {
		return "", invalid("registry.url: registry %q is not in Stevedore's registry allowlist", t.registry.Host)
	}
	m, rerr := h.lookup(ctx, t)
	if rerr != nil {
		return "", rerr
	}
	rep, queued, err := h.d.Index(ctx, m)
	if err != nil {
		switch {
		case errors.Is(err, intake.ErrRegistryNotAllowed):
			return "", invalid("registry.url: %v", err)
		case errors.Is(err, intake.ErrQueueUnavailable):
			return "", &requestError{http.StatusInternalServerError, fmt.Sprintf("queue the index of %s: %v (ask again later)", m.Hash, err)}
		}
		return "", &requestError{http.StatusInternalServerError, fmt.Sprintf("queue the index of %s: %v", m.Hash, err)}
	}
	id, err := h.ids.encode(t.ref)
	if err != nil {
		return "", &requestError{http.StatusInternalServerError, err.Error()}
	}
	h.log.InfoContext(ctx, "harbor scan request accepted", "digest", m.Hash, "repository", t.ref.Repository,
		"registry", t.registry.Host, "state", rep.State, "queued", queued, "sbom_media_types", t.ref.MediaTypes)
	return id, nil
}
