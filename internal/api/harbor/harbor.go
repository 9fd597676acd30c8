// Package harbor serves Harbor's pluggable scanner adapter API v1.2
// (goharbor/pluggable-scanner-spec, testdata/fixtures/harbor) with the
// "sbom" capability, so that Harbor can use Stevedore to generate the SBOMs
// of the images it hosts:
//
//	GET  /api/v1/metadata                        the scanner and its capability
//	POST /api/v1/scan                            ScanRequest -> 202 ScanResponse {"id"}
//	GET  /api/v1/scan/{scan_request_id}/report   200 the SBOM report; 302 with Refresh-After while the job runs
//
// The API is mounted under Prefix (/harbor), since the paths would collide
// with Stevedore's own /api/v1/...; Harbor's scanner registration takes a
// base URL, so the endpoint to register is https://stevedore.example.com/harbor.
//
// A scan request is indexed through the normal pipeline: the manifest is
// read from the registry Harbor names, with the authorization Harbor gives
// for the artifact, and published by the dispatcher (internal/intake) as a
// manifest whose layers carry that authorization as their Authorization
// header, exactly as a Clair manifest's layers carry their credentials: the
// worker sends it to the registry, JetStream holds it while the job is
// pending, and the report kept in Postgres is stored without it. A layer
// already scanned for another image is not fetched again.
//
// Requests are authenticated with the bearer token of the scanner's
// registration in Harbor (Config.Token), compared in constant time; without
// a token the API answers 404 saying how to enable it.
//
// The scan request id is opaque and stateless: the manifest digest, the
// SBOM media types asked for and the artifact Harbor named, encoded and
// signed with a key derived from the token (see scanID). It survives
// restarts and needs no table; an id this server did not make is unknown
// (404).
package harbor

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
)

// Prefix is where the API is mounted: the base URL to register in Harbor
// is the server's URL with this path.
const Prefix = "/harbor"

// MIME types of the scanner adapter API (the OpenAPI document's content
// types, and Harbor's src/pkg/scan/rest/v1/spec.go).
const (
	MimeMetadata       = "application/vnd.scanner.adapter.metadata+json; version=1.0"
	MimeMetadata11     = "application/vnd.scanner.adapter.metadata+json; version=1.1"
	MimeScanResponse   = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	MimeError          = "application/vnd.scanner.adapter.error+json; version=1.0"
	MimeSBOMReport     = "application/vnd.security.sbom.report+json; version=1.0"
	MimeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MimeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// SBOM media types Harbor asks for (sbom_media_types, sbom_media_type).
const (
	MediaTypeSPDX      = "application/spdx+json"
	MediaTypeCycloneDX = "application/vnd.cyclonedx+json"
)

// Scanner names Stevedore in the metadata and in every report.
const (
	ScannerName   = "Stevedore"
	ScannerVendor = "stevedore-dev"
)

// Properties of the metadata answer.
const (
	// PropertyAuthType tells Harbor what registry authorization to send
	// (Harbor's src/pkg/scan/dao/scanner/model.go): "Bearer" makes it send
	// a token of its token service scoped to pulling the one repository,
	// not the credentials of a robot account that may also push.
	PropertyAuthType = "harbor.scanner-adapter/registry-authorization-type"
	// PropertyScannerState is the scanner-set state of the reports made.
	PropertyScannerState = "stevedore/scanner-state"
)

// DefaultRefreshAfter is the Refresh-After of a 302 (seconds, whole).
// Harbor's client reads it as an 8-bit integer (strconv.ParseInt(v, 10, 8)
// in src/pkg/scan/rest/v1/client.go): 127 at most, or it falls back to 5.
const DefaultRefreshAfter = 5 * time.Second

// DefaultResolveTimeout bounds the registry lookup of a scan request:
// Harbor gives each call to a scanner 5 seconds (its client's Timeout).
const DefaultResolveTimeout = 3 * time.Second

// maxBody bounds a scan request's body.
const maxBody = 1 << 20

// Config configures the Harbor API.
type Config struct {
	// Token is the bearer token of the scanner's registration in Harbor;
	// empty disables the API (404).
	Token string
	// Transport is the base transport of registry requests (the registry
	// client's: per-registry limits, retries, plain HTTP); nil:
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Version is the scanner version shown to Harbor (default: the
	// build's module version or VCS revision).
	Version string
	// RefreshAfter is the Refresh-After of a 302 (default
	// DefaultRefreshAfter, 1s to 127s).
	RefreshAfter time.Duration
	// ResolveTimeout bounds the registry lookup of a scan request
	// (default DefaultResolveTimeout).
	ResolveTimeout time.Duration
}

// MinTokenLength is the shortest token accepted.
const MinTokenLength = 16

// Validate checks the configuration; no error shows the token.
func (c Config) Validate() error {
	if c.Token != "" && len(c.Token) < MinTokenLength {
		return fmt.Errorf("harbor token: %d characters, want at least %d", len(c.Token), MinTokenLength)
	}
	if strings.TrimSpace(c.Token) != c.Token || strings.ContainsAny(c.Token, "\r\n\t ") {
		return fmt.Errorf("harbor token: contains white space")
	}
	if c.RefreshAfter != 0 && (c.RefreshAfter < time.Second || c.RefreshAfter > 127*time.Second) {
		return fmt.Errorf("harbor refresh-after: %s: want 1s to 127s", c.RefreshAfter)
	}
	return nil
}

// Handler serves the API.
type Handler struct {
	cfg   Config
	d     *intake.Dispatcher
	store *postgres.Store
	log   *slog.Logger
	ids   idCodec
}

// New returns the API's handler on the dispatcher d and store st.
func New(cfg Config, d *intake.Dispatcher, st *postgres.Store, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Version == "" {
		cfg.Version = buildVersion()
	}
	if cfg.RefreshAfter == 0 {
		cfg.RefreshAfter = DefaultRefreshAfter
	}
	if cfg.ResolveTimeout == 0 {
		cfg.ResolveTimeout = DefaultResolveTimeout
	}
	return &Handler{cfg: cfg, d: d, store: st, log: log, ids: newIDCodec(cfg.Token)}
}

// buildVersion is the main module's version, else its VCS revision.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			return "devel-" + s.Value[:min(12, len(s.Value))]
		}
	}
	return "devel"
}

// ErrorResponse is the spec's error answer.
type ErrorResponse struct {
	Error ErrorMessage `json:"error"`
}

// ErrorMessage is the spec's Error.
type ErrorMessage struct {
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	writeJSON(w, status, MimeError, ErrorResponse{Error: ErrorMessage{Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, contentType = http.StatusInternalServerError, MimeError
		b, _ = json.Marshal(ErrorResponse{Error: ErrorMessage{Message: "encode answer: " + err.Error()}})
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// authorized checks the request's bearer token, in constant time, and
// answers 404 (disabled) or 401 itself when it does not pass.
func (h *Handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.Token == "" {
		writeError(w, http.StatusNotFound, "the Harbor scanner API is not enabled on this server: set STEVEDORE_HARBOR_TOKEN or --harbor-token-file")
		return false
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	want := sha256.Sum256([]byte(h.cfg.Token))
	if subtle.ConstantTimeCompare(got[:], want[:]) == 1 && strings.EqualFold(scheme, "Bearer") {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="stevedore harbor scanner"`)
	msg := "authorization: want the bearer token of the scanner's registration (Authorization: Bearer <token>)"
	if scheme != "" {
		msg = "authorization: the token is not this scanner's, or not a bearer token"
	}
	writeError(w, http.StatusUnauthorized, msg)
	return false
}

// Metadata is the metadata answer.
type Metadata struct {
	Scanner      Scanner           `json:"scanner"`
	Capabilities []Capability      `json:"capabilities"`
	Properties   map[string]string `json:"properties"`
}

// Scanner is the spec's Scanner.
type Scanner struct {
	Name    string `json:"name"`
	Vendor  string `json:"vendor"`
	Version string `json:"version"`
}

// Capability is the spec's ScannerCapability.
type Capability struct {
	Type                 string         `json:"type"`
	ConsumesMimeTypes    []string       `json:"consumes_mime_types"`
	ProducesMimeTypes    []string       `json:"produces_mime_types"`
	AdditionalAttributes map[string]any `json:"additional_attributes,omitempty"`
}

func (h *Handler) scanner() Scanner {
	return Scanner{Name: ScannerName, Vendor: ScannerVendor, Version: h.cfg.Version}
}

// ServeMetadata answers GET /api/v1/metadata.
func (h *Handler) ServeMetadata(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(w, r) {
		return
	}
	props := map[string]string{PropertyAuthType: "Bearer"}
	if h.d != nil {
		props[PropertyScannerState] = h.d.State()
	}
	md := Metadata{
		Scanner: h.scanner(),
		Capabilities: []Capability{{
			Type:                 "sbom",
			ConsumesMimeTypes:    []string{MimeOCIManifest, MimeDockerManifest},
			ProducesMimeTypes:    []string{MimeSBOMReport},
			AdditionalAttributes: map[string]any{"sbom_media_types": []string{MediaTypeSPDX, MediaTypeCycloneDX}},
		}},
		Properties: props,
	}
	writeJSON(w, http.StatusOK, metadataType(r.Header.Values("Accept")), md)
}

// metadataType is version 1.1 of the metadata type when the client asks for
// it and not for 1.0, else 1.0 (what Harbor asks for).
func metadataType(accept []string) string {
	v11 := false
	for _, a := range accept {
		for _, part := range strings.Split(a, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != "application/vnd.scanner.adapter.metadata+json" {
				continue
			}
			switch params["version"] {
			case "1.0":
				return MimeMetadata
			case "1.1":
				v11 = true
			}
		}
	}
	if v11 {
		return MimeMetadata11
	}
	return MimeMetadata
}
