package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/stevedore-dev/stevedore/pkg/affected"
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
	mt, err := negotiate(r.Header.Values("Accept"), affectedMediaTypes)
	if errors.Is(err, errNotAcceptable) {
		writeError(w, http.StatusNotAcceptable, "not-acceptable", err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", err.Error())
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		ctm, _, err := mime.ParseMediaType(ct)
		if err != nil || (ctm != "application/json" && !strings.HasSuffix(ctm, "+json")) {
			writeError(w, http.StatusUnsupportedMediaType, "bad-request", fmt.Sprintf("Content-Type %q: want application/json", ct))
			return
		}
	}
	var req AffectedRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxAffectedBodySize))
	if err := dec.Decode(&req); err != nil {
		var big *http.MaxBytesError
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		msg := "request body: " + err.Error()
		switch {
		case errors.As(err, &big):
			writeError(w, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("request body is larger than %d bytes: send fewer vulnerabilities per request", big.Limit))
			return
		case errors.As(err, &syn):
			msg = fmt.Sprintf("request body: invalid JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			msg = fmt.Sprintf("request body: field %q: %s is not a valid %s (byte %d)", typ.Field, typ.Value, typ.Type, typ.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			msg = "request body: invalid JSON: the document ends early"
		case errors.Is(err, io.EOF):
			msg = `request body is empty: want {"vulnerabilities": [...]}`
		}
		writeError(w, http.StatusBadRequest, "bad-request", msg)
		return
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "bad-request", "request body: more than one JSON document")
		return
	}
	if req.Vulnerabilities == nil {
		writeError(w, http.StatusBadRequest, "bad-request", `request body: field "vulnerabilities": required, a list of Clair vulnerabilities`)
		return
	}
	ans, err := affected.New(s.store, s.log).Affected(r.Context(), req.Vulnerabilities)
	switch {
	case errors.Is(err, affected.ErrTooMany):
		writeError(w, http.StatusRequestEntityTooLarge, "too-large", err.Error())
		return
	case errors.Is(err, affected.ErrInvalid):
		writeError(w, http.StatusBadRequest, "bad-request", err.Error())
		return
	case errors.Is(err, context.Canceled):
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "affected manifests", "vulnerabilities", len(req.Vulnerabilities), "error", err)
		writeError(w, http.StatusInternalServerError, "internal-error", "could not find the affected manifests: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(ans)
}

// errNotAcceptable: no offered media type is acceptable.
var errNotAcceptable = errors.New("not acceptable")

// negotiate picks the answer's media type from Accept headers as Clair
// does: media ranges ordered by q (stable; 1 when absent), the first that
// one of offers matches wins; no Accept header, or an empty one, is the
// first offer. Ranges with q=0 are refused, as RFC 9110 says.
func negotiate(accept []string, offers []string) (string, error) {
	type rng struct {
		typ, sub string
		q        float64
	}
	var ranges []rng
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				return "", fmt.Errorf("header Accept %q: %v", part, err)
			}
			typ, sub, ok := strings.Cut(mt, "/")
			if !ok {
				return "", fmt.Errorf("header Accept %q: not a media range", part)
			}
			q := 1.0
			if qs, ok := params["q"]; ok {
				q, err = strconv.ParseFloat(qs, 64)
				if err != nil || q < 0 || q > 1 {
					return "", fmt.Errorf("header Accept %q: q=%q: want a number from 0 to 1", part, qs)
				}
			}
			ranges = append(ranges, rng{typ, sub, q})
		}
	}
	if len(ranges) == 0 {
		return offers[0], nil
	}
	slices.SortStableFunc(ranges, func(a, b rng) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	for _, rg := range ranges {
		if rg.q == 0 {
			break
		}
		for _, o := range offers {
			typ, sub, _ := strings.Cut(o, "/")
			if (rg.typ == "*" || rg.typ == typ) && (rg.sub == "*" || rg.sub == sub) {
				return o, nil
			}
		}
	}
	return "", fmt.Errorf("header Accept %q: none of %s is acceptable: %w", strings.Join(accept, ", "), strings.Join(offers, ", "), errNotAcceptable)
}
