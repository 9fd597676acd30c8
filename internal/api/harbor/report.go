package harbor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/sbom"
	"github.com/stevedore-dev/stevedore/report"
)

// SBOMReport is the spec's HarborSbomReport.
type SBOMReport struct {
	GeneratedAt      time.Time       `json:"generated_at"`
	Artifact         Artifact        `json:"artifact"`
	Scanner          Scanner         `json:"scanner"`
	VendorAttributes map[string]any  `json:"vendor_attributes,omitempty"`
	MediaType        string          `json:"media_type"`
	SBOM             json.RawMessage `json:"sbom"`
}

// formats maps Harbor's SBOM media types to internal/sbom's formats.
var formats = map[string]string{MediaTypeSPDX: sbom.FormatSPDXJSON, MediaTypeCycloneDX: sbom.FormatCycloneDXJSON}

// ServeReport answers GET /api/v1/scan/{scan_request_id}/report: 404 for an
// id this server did not make or a report since deleted; 501 for an Accept
// that is not the SBOM report type; 400 for a missing or unknown
// sbom_media_type, or one the scan request did not ask for; 302 with
// Refresh-After while the job runs; 500 when indexing failed; else 200 and
// the SBOM report.
func (h *Handler) ServeReport(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(w, r) {
		return
	}
	ref, err := h.ids.decode(r.PathValue("scan_request_id"))
	if err != nil {
		writeError(w, http.StatusNotFound, "no scan request with this id: it was not made by this server (or with another token)")
		return
	}
	if !acceptsSBOMReport(r.Header.Values("Accept")) {
		writeError(w, http.StatusNotImplemented, fmt.Sprintf("Accept %q: Stevedore produces %s only", strings.Join(r.Header.Values("Accept"), ", "), MimeSBOMReport))
		return
	}
	q := r.URL.Query()["sbom_media_type"]
	if len(q) != 1 || formats[q[0]] == "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("query: give sbom_media_type once, %s or %s", MediaTypeSPDX, MediaTypeCycloneDX))
		return
	}
	mt := q[0]
	if !slices.Contains(ref.MediaTypes, mt) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("query: sbom_media_type %s was not asked for by this scan request (it asked for %s)", mt, strings.Join(ref.MediaTypes, ", ")))
		return
	}
	rep, err := h.store.Report(r.Context(), ref.Digest)
	switch {
	case errors.Is(err, postgres.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no scan request for %s: its report was deleted; scan the artifact again", ref.Digest))
		return
	case err != nil:
		h.log.ErrorContext(r.Context(), "harbor report", "digest", ref.Digest, "error", err)
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("read the report of %s: %v", ref.Digest, err))
		return
	case rep.State == report.StateIndexError:
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("indexing %s failed: %s", ref.Digest, rep.Err))
		return
	case !rep.State.Terminal():
		w.Header().Set("Refresh-After", strconv.Itoa(int(h.cfg.RefreshAfter/time.Second)))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusFound)
		return
	}
	body, err := h.sbomReport(r, ref, rep, mt)
	if err != nil {
		h.log.ErrorContext(r.Context(), "harbor SBOM report", "digest", ref.Digest, "media_type", mt, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", MimeSBOMReport)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// sbomReport encodes the report's SBOM in media type mt, in the report
// Harbor reads.
func (h *Handler) sbomReport(r *http.Request, ref scanRef, rep *report.Report, mt string) ([]byte, error) {
	name := ref.Repository + "@" + string(ref.Digest)
	if ref.Tag != "" {
		name = ref.Repository + ":" + ref.Tag
	}
	var doc bytes.Buffer
	if err := sbom.Encode(r.Context(), &doc, rep, formats[mt], sbom.Options{Name: name, ToolVersion: h.cfg.Version}); err != nil {
		return nil, fmt.Errorf("SBOM of %s: %w", ref.Digest, err)
	}
	attrs := map[string]any{"stevedore:state": string(rep.State), "stevedore:scanner_state": rep.ScannerState}
	if rep.State == report.StateIndexPartial {
		attrs["stevedore:partial"] = true
	}
	out := SBOMReport{
		GeneratedAt:      rep.UpdatedAt.UTC(),
		Artifact:         Artifact{Repository: ref.Repository, Digest: string(ref.Digest), Tag: ref.Tag, MimeType: ref.MimeType},
		Scanner:          h.scanner(),
		VendorAttributes: attrs,
		MediaType:        mt,
		SBOM:             json.RawMessage(bytes.TrimSpace(doc.Bytes())),
	}
	if out.GeneratedAt.IsZero() {
		out.GeneratedAt = time.Now().UTC()
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("SBOM report of %s: %w", ref.Digest, err)
	}
	return b, nil
}

// acceptsSBOMReport reports whether Accept allows the SBOM report type
// (version 1.0): as Harbor sends it, or with */* or none at all.
func acceptsSBOMReport(accept []string) bool {
	if len(accept) == 0 {
		return true
	}
	for _, a := range accept {
		for _, part := range strings.Split(a, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			switch mt {
			case "*/*", "application/*":
				return true
			case "application/vnd.security.sbom.report+json":
				if v := params["version"]; v == "" || v == "1.0" {
					return true
				}
			}
		}
	}
	return false
}
