package api

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/internal/sbom"
	"github.com/stevedore-dev/stevedore/report"
)

// getSBOM serves a stored report as an SBOM (internal/sbom):
// GET /api/v1/reports/{digest}/sbom?format=spdx-json|cyclonedx-json. The
// answer is the same bytes for the same stored report, with an ETag (304 on
// If-None-Match). 400 for a missing or unknown format, 404 when there is no
// report, 409 while the report is not finished (with Retry-After) or when
// it is an index error.
func (s *Server) getSBOM(w http.ResponseWriter, r *http.Request) {
	d, ok := s.digestParam(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()["format"]
	if len(q) != 1 {
		apierr.Write(w, http.StatusBadRequest, "bad-request",
			fmt.Sprintf("query: give format once, one of %s", strings.Join(sbom.Formats, ", ")))
		return
	}
	format := q[0]
	ct, err := sbom.MediaType(format)
	if err != nil {
		apierr.Write(w, http.StatusBadRequest, "bad-request", "query: format: "+err.Error())
		return
	}
	rep, ok := s.loadReport(w, r, d)
	if !ok {
		return
	}
	switch {
	case rep.State == report.StateIndexError:
		apierr.Write(w, http.StatusConflict, "index-error",
			fmt.Sprintf("the index of %s failed (%s): there is no package list to export; index it again", d, rep.Err))
		return
	case !rep.State.Terminal():
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		apierr.Write(w, http.StatusConflict, "not-ready",
			fmt.Sprintf("the report of %s is in state %s: ask again when it is finished", d, rep.State))
		return
	}
	etag := reportbody.ETag(rep, "sbom-"+format)
	w.Header().Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	var buf bytes.Buffer
	if err := sbom.Encode(r.Context(), &buf, rep, format, sbom.Options{}); err != nil {
		s.log.ErrorContext(r.Context(), "SBOM export", "digest", d, "format", format, "error", err)
		apierr.Write(w, http.StatusInternalServerError, "internal-error", err.Error())
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}
