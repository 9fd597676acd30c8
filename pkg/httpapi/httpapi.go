// Package httpapi serves the dispatcher's HTTP API: Clair's indexer API
// (index_report and index_state, so that Clair's clients work unchanged) and
// an image-reference endpoint.
//
//	POST   /indexer/api/v1/index_report           Clair Manifest -> 201 (current report) or 202 (queued)
//	GET    /indexer/api/v1/index_report/{digest}  the IndexReport, 404 if none
//	DELETE /indexer/api/v1/index_report/{digest}  204, 404 if none
//	DELETE /indexer/api/v1/index_report           JSON array of digests -> the deleted ones
//	GET    /indexer/api/v1/index_state            {"state": ...}, ETag; 304 on If-None-Match
//	POST   /api/v1/index                          {"reference": "registry/repo:tag", "platform": ""}
//	GET    /api/v1/partial                        partial reports: reasons, attempts, next retry
//	POST   /api/v1/partial/{digest}/retry         retry a partial report now
//	GET    /healthz
//
// POST index_report with If-None-Match equal to the current state answers
// 412: the client already has reports for this scanner set. Errors are JSON
// {"code": ..., "message": ...} with a message saying what was wrong.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/stevedore-dev/stevedore/pkg/dispatcher"
	"github.com/stevedore-dev/stevedore/pkg/index"
	"github.com/stevedore-dev/stevedore/pkg/jobs"
	"github.com/stevedore-dev/stevedore/pkg/resolve"
	"github.com/stevedore-dev/stevedore/pkg/store"
)

// MaxBodySize bounds request bodies.
const MaxBodySize = 4 << 20

// Server is the HTTP API.
type Server struct {
	d     *dispatcher.Dispatcher
	store *store.Store
	log   *slog.Logger
}

// New returns the API's handler, traced with otelhttp on tp (nil: the global
// provider).
func New(d *dispatcher.Dispatcher, st *store.Store, log *slog.Logger, tp trace.TracerProvider) http.Handler {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{d: d, store: st, log: log}
	mux := http.NewServeMux()
	// Each route is traced on its own, so that spans are named by route.
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, otelhttp.NewHandler(h, pattern, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(jobs.Propagator())))
	}
	route("POST /indexer/api/v1/index_report", s.postIndexReport)
	route("GET /indexer/api/v1/index_report/{digest}", s.getIndexReport)
	route("DELETE /indexer/api/v1/index_report/{digest}", s.deleteIndexReport)
	route("DELETE /indexer/api/v1/index_report", s.deleteIndexReports)
	route("GET /indexer/api/v1/index_state", s.getIndexState)
	route("POST /api/v1/index", s.postIndex)
	route("GET /api/v1/partial", s.listPartial)
	route("POST /api/v1/partial/{digest}/retry", s.retryPartial)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := st.Pool().Ping(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "database: "+err.Error())
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// decodeBody reads a JSON body into v with a size limit, a content-type
// check, and errors that say where the JSON is wrong.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			writeError(w, http.StatusUnsupportedMediaType, "bad-request", fmt.Sprintf("Content-Type %q: want application/json", ct))
			return false
		}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodySize)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		var big *http.MaxBytesError
		msg := "request body: " + err.Error()
		switch {
		case errors.As(err, &big):
			writeError(w, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("request body is larger than %d bytes", big.Limit))
			return false
		case errors.As(err, &syn):
			msg = fmt.Sprintf("request body: invalid JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			msg = fmt.Sprintf("request body: field %q: %s is not a valid %s (byte %d)", typ.Field, typ.Value, typ.Type, typ.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			msg = "request body: invalid JSON: the document ends early"
		case errors.Is(err, io.EOF):
			msg = "request body is empty: want a JSON document"
		}
		writeError(w, http.StatusBadRequest, "bad-request", msg)
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "bad-request", "request body: more than one JSON document")
		return false
	}
	return true
}

func etagMatches(header, state string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == "*" || strings.Trim(t, `"`) == state {
			return true
		}
	}
	return false
}

func (s *Server) postIndexReport(w http.ResponseWriter, r *http.Request) {
	state := s.d.State()
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, state) {
		w.Header().Set("ETag", `"`+state+`"`)
		writeError(w, http.StatusPreconditionFailed, "precondition-failed", "If-None-Match equals the current index state")
		return
	}
	var m index.Manifest
	if !decodeBody(w, r, &m) {
		return
	}
	if err := m.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", err.Error())
		return
	}
	rep, queued, err := s.d.Index(r.Context(), &m)
	if errors.Is(err, dispatcher.ErrRegistryNotAllowed) {
		writeError(w, http.StatusForbidden, "registry-not-allowed", err.Error())
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "index request", "digest", m.Hash, "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "could not queue the manifest: "+err.Error())
		return
	}
	w.Header().Set("Location", "/indexer/api/v1/index_report/"+string(m.Hash))
	w.Header().Set("ETag", `"`+state+`"`)
	status := http.StatusCreated
	if queued {
		status = http.StatusAccepted
	}
	writeJSON(w, status, rep)
}

func (s *Server) digestParam(w http.ResponseWriter, r *http.Request) (index.Digest, bool) {
	d, err := index.ParseDigest(r.PathValue("digest"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", "path: "+err.Error())
		return "", false
	}
	return d, true
}

func (s *Server) getIndexReport(w http.ResponseWriter, r *http.Request) {
	d, ok := s.digestParam(w, r)
	if !ok {
		return
	}
	rep, err := s.store.Report(r.Context(), d)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not-found", fmt.Sprintf("no index report for %s", d))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal-error", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) deleteIndexReport(w http.ResponseWriter, r *http.Request) {
	d, ok := s.digestParam(w, r)
	if !ok {
		return
	}
	found, err := s.store.DeleteManifest(r.Context(), d)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal-error", err.Error())
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "not-found", fmt.Sprintf("no index report for %s", d))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteIndexReports(w http.ResponseWriter, r *http.Request) {
	var ds []string
	if !decodeBody(w, r, &ds) {
		return
	}
	deleted := []index.Digest{}
	for i, raw := range ds {
		d, err := index.ParseDigest(raw)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad-request", fmt.Sprintf("[%d]: %v", i, err))
			return
		}
		found, err := s.store.DeleteManifest(r.Context(), d)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal-error", err.Error())
			return
		}
		if found {
			deleted = append(deleted, d)
		}
	}
	writeJSON(w, http.StatusOK, deleted)
}

func (s *Server) getIndexState(w http.ResponseWriter, r *http.Request) {
	state := s.d.State()
	w.Header().Set("ETag", `"`+state+`"`)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, state) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"state": state})
}

// IndexRequest is the body of POST /api/v1/index.
type IndexRequest struct {
	Reference string `json:"reference"`
	Platform  string `json:"platform,omitempty"`
}

// IndexResponse answers POST /api/v1/index.
type IndexResponse struct {
	Reference string             `json:"reference"`
	Manifests []dispatcher.Image `json:"manifests"`
}

func (s *Server) postIndex(w http.ResponseWriter, r *http.Request) {
	var req IndexRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Reference == "" {
		writeError(w, http.StatusBadRequest, "bad-request", `field "reference": required, e.g. "registry.example.com/team/app:1.0"`)
		return
	}
	if _, err := name.ParseReference(req.Reference); err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", fmt.Sprintf("field \"reference\": %v", err))
		return
	}
	imgs, err := s.d.IndexReference(r.Context(), req.Reference, req.Platform)
	if err != nil {
		status, code := http.StatusBadGateway, "registry-error"
		var te *transport.Error
		switch {
		case errors.Is(err, dispatcher.ErrRegistryNotAllowed):
			status, code = http.StatusForbidden, "registry-not-allowed"
		case errors.Is(err, dispatcher.ErrQueueUnavailable):
			status, code = http.StatusServiceUnavailable, "unavailable"
		case errors.As(err, &te) && (te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
			status, code = http.StatusNotFound, "not-found"
		case errors.Is(err, resolve.ErrInvalid):
			status, code = http.StatusBadRequest, "bad-request"
		case errors.Is(err, context.Canceled):
			return
		}
		writeError(w, status, code, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, IndexResponse{Reference: req.Reference, Manifests: imgs})
}

func (s *Server) listPartial(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "bad-request", fmt.Sprintf("query limit=%q: want a number from 1 to 10000", v))
			return
		}
		limit = n
	}
	ps, err := s.store.ListPartial(r.Context(), limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal-error", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

func (s *Server) retryPartial(w http.ResponseWriter, r *http.Request) {
	d, ok := s.digestParam(w, r)
	if !ok {
		return
	}
	found, err := s.store.RequestRetry(r.Context(), d)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal-error", err.Error())
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "not-found", fmt.Sprintf("no partial report for %s", d))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"manifest_hash": string(d), "status": "retry requested"})
}
