package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/stevedore-dev/stevedore/internal/affected"
	"github.com/stevedore-dev/stevedore/internal/api/apierr"
)

// MaxAffectedBodySize bounds the body of an affected-manifest request: Clair's
// notifier sends up to 1000 vulnerabilities, each with its description and
// links, at a time.
const MaxAffectedBodySize = 32 << 20

// affectedMediaTypes are the answers' media types, preferred first, as
// Clair offers them.
var affectedMediaTypes = []string{"application/vnd.clair.affected_manifests.v1+json", "application/json"}

// AffectedRequest is the body of POST
// /indexer/api/v1/internal/affected_manifest/.
type AffectedRequest struct {
	Vulnerabilities []affected.Vulnerability `json:"vulnerabilities"`
}

// postAffectedManifests answers which manifests each vulnerability affects
// (claircore's AffectedManifests), for Clair's notifier.
func (s *Server) postAffectedManifests(w http.ResponseWriter, r *http.Request) {
	mt, ok := negotiate(w, r, affectedMediaTypes)
	if !ok {
		return
	}
	var req AffectedRequest
	if !decodeBodyLimit(w, r, &req, MaxAffectedBodySize, `{"vulnerabilities": [...]}`) {
		return
	}
	if req.Vulnerabilities == nil {
		apierr.Write(w, http.StatusBadRequest, "bad-request", `request body: field "vulnerabilities": required, a list of Clair vulnerabilities`)
		return
	}
	ans, err := affected.New(s.store, s.log).Affected(r.Context(), req.Vulnerabilities)
	switch {
	case errors.Is(err, affected.ErrTooMany):
		apierr.Write(w, http.StatusRequestEntityTooLarge, "too-large", err.Error())
		return
	case errors.Is(err, affected.ErrInvalid):
		apierr.Write(w, http.StatusBadRequest, "bad-request", err.Error())
		return
	case errors.Is(err, context.Canceled):
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "affected manifests", "vulnerabilities", len(req.Vulnerabilities), "error", err)
		apierr.Write(w, http.StatusInternalServerError, "internal-error", "could not find the affected manifests: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(ans)
}
