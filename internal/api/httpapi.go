// Package api serves the dispatcher's HTTP API: Clair's indexer API
// (index_report and index_state, so that Clair's clients work unchanged),
// Stevedore's native API (image references, full reports, partial reports)
// and its OpenAPI document.
//
//	POST   /indexer/api/v1/index_report           Clair Manifest -> 201 and the report once it is terminal
//	                                              (202 at once with "Prefer: respond-async", or when the wait ends)
//	GET    /indexer/api/v1/index_report/{digest}  the IndexReport in Clair's shape; ETag, 304; 404 if none
//	DELETE /indexer/api/v1/index_report/{digest}  204 (also when there was nothing to delete)
//	DELETE /indexer/api/v1/index_report           JSON array of digests -> the deleted ones
//	GET    /indexer/api/v1/index_state            {"state": ...}, ETag; 304 on If-None-Match
//	POST   /api/v1/index                          {"reference": "registry/repo:tag", "platform": ""} -> 202
//	GET    /api/v1/reports/{digest}               the report with Stevedore's fields (partial reasons, attempt, next retry)
//	GET    /api/v1/reports/{digest}/sbom          the report as an SBOM: ?format=spdx-json|cyclonedx-json (internal/sbom)
//	GET    /api/v1/partial                        partial reports: reasons, attempts, next retry
//	POST   /api/v1/partial/{digest}/retry         retry a partial report now
//	GET    /harbor/api/v1/metadata                Harbor's pluggable scanner API (internal/api/harbor):
//	POST   /harbor/api/v1/scan                    metadata, scan requests, SBOM reports; Harbor's
//	GET    /harbor/api/v1/scan/{id}/report        scanner registration takes the base URL .../harbor
//	GET    /openapi/v1                            this API's OpenAPI 3 document
//	GET    /healthz
//
// POST index_report with If-None-Match equal to the current state answers
// 412: the client already has reports for this scanner set. A finished
// report's answer is sent gzip compressed, as it is stored, when the
// request's Accept-Encoding allows it, and decompressed otherwise (see
// serveStored). Errors are JSON
// {"code": ..., "message": ...} with a message saying what was wrong, on
// every path, unknown paths (404) and methods (405, with Allow) included.
package api

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
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
	"github.com/stevedore-dev/stevedore/internal/api/harbor"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/reportwait"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/internal/telemetry"
	"github.com/stevedore-dev/stevedore/report"
)

// MaxBodySize bounds request bodies.
const MaxBodySize = 4 << 20

// Server is the HTTP API.
type Server struct {
	d     *intake.Dispatcher
	store Store
	log   *slog.Logger
	opts  options
	// compressor compresses the answers of reports stored without them.
	compressor reportbody.Compressor
	// routes are the patterns registered, in order (the OpenAPI test
	// checks each is documented).
	routes []string
	// partialServed counts partial reports served on Clair's paths, by how.
	partialServed metric.Int64Counter
	// answers bounds the bytes of report answers in memory at once.
	answers *answerLimiter
	// cache keeps small stored answers between requests; hub (nil
	// without a database) listens for changes to them, and is the
	// default Waiter.
	cache *answerCache
	hub   *reportwait.Hub
}

// Option configures the API.
type Option func(*options)

type options struct {
	waiter       Waiter
	maxWait      time.Duration
	servePartial bool
	meter        metric.MeterProvider
	answerBytes  int64
	harbor       harbor.Config
	cacheBytes   int64
}

// Waiter waits until the report of a manifest is terminal (internal/postgres/reportwait).
type Waiter interface {
	Wait(ctx context.Context, d report.Digest) (*report.Report, error)
}

// DefaultIndexWait is how long POST index_report waits for a report by
// default: below the 600 s Quay gives the request, so that Quay gets an
// answer rather than a timeout.
const DefaultIndexWait = 540 * time.Second

// WithWaiter sets what POST index_report waits with. Without it, the API
// waits with a reportwait.Hub on the store's pool.
func WithWaiter(w Waiter) Option { return func(o *options) { o.waiter = w } }

// WithIndexWait bounds how long POST index_report waits for a report
// (default DefaultIndexWait). When the wait ends first the answer is 202
// with the report as it is then (see postIndexReport).
func WithIndexWait(d time.Duration) Option { return func(o *options) { o.maxWait = d } }

// WithServePartial serves IndexPartial reports as they are on Clair's paths
// (state IndexPartial) instead of as IndexFinished.
func WithServePartial(b bool) Option { return func(o *options) { o.servePartial = b } }

// WithAnswerBytes bounds the bytes of report answers held in memory at
// once (default DefaultAnswerBytes): a stored answer streamed weighs one
// chunk (postgres.BodyChunkSize) at most, an answer encoded for its request
// its size. A request waits, until its context ends, for its answer's
// weight to be free.
func WithAnswerBytes(n int64) Option { return func(o *options) { o.answerBytes = n } }

// WithHarbor configures Harbor's scanner API under /harbor/api/v1/
// (internal/api/harbor); without a token there it answers 404.
func WithHarbor(c harbor.Config) Option { return func(o *options) { o.harbor = c } }

// WithAnswerCacheBytes bounds the bytes of stored answers kept in memory
// between requests (default DefaultAnswerCacheBytes; 0 keeps none). While
// the API listens for changes to stored answers (postgres.AnswerChannel), an
// answer kept is served with no query; otherwise only when the store says,
// in the request's one query, that it is still the answer stored.
func WithAnswerCacheBytes(n int64) Option { return func(o *options) { o.cacheBytes = n } }

// WithMeterProvider sets where the API's metrics go (default: the global
// provider).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.meter = mp } }

// New returns the API's handler, traced with otelhttp on tp (nil: the global
// provider).
func New(d *intake.Dispatcher, st *postgres.Store, log *slog.Logger, tp trace.TracerProvider, opts ...Option) http.Handler {
	_, h := newServer(d, st, log, tp, opts...)
	return h
}

func newServer(d *intake.Dispatcher, st *postgres.Store, log *slog.Logger, tp trace.TracerProvider, opts ...Option) (*Server, http.Handler) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{d: d, log: log, opts: options{maxWait: DefaultIndexWait, answerBytes: DefaultAnswerBytes, cacheBytes: DefaultAnswerCacheBytes}}
	if st != nil {
		s.store = st
	}
	for _, o := range opts {
		o(&s.opts)
	}
	s.answers = newAnswerLimiter(s.opts.answerBytes)
	s.cache = newAnswerCache(s.opts.cacheBytes)
	if s.opts.meter == nil {
		s.opts.meter = otel.GetMeterProvider()
	}
	if st != nil {
		o := reportwait.Options{Logger: log}
		if s.opts.cacheBytes > 0 {
			o.Answers = s.cache
		}
		s.hub = reportwait.New(st.Pool(), s.waitDone, o)
	}
	if s.opts.waiter == nil && s.hub != nil && d != nil {
		s.opts.waiter = s.hub
	}
	s.initMetrics()
	mux := http.NewServeMux()
	// Each route is traced on its own, so that spans are named by route.
	route := func(pattern string, h http.HandlerFunc) {
		s.routes = append(s.routes, pattern)
		mux.Handle(pattern, otelhttp.NewHandler(h, pattern, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(telemetry.Propagator())))
	}
	route("POST /indexer/api/v1/index_report", s.postIndexReport)
	route("GET /indexer/api/v1/index_report/{digest}", s.getIndexReport)
	route("DELETE /indexer/api/v1/index_report/{digest}", s.deleteIndexReport)
	route("DELETE /indexer/api/v1/index_report", s.deleteIndexReports)
	route("GET /indexer/api/v1/index_state", s.getIndexState)
	route("POST /indexer/api/v1/internal/affected_manifest/", s.postAffectedManifests)
	route("POST /api/v1/index", s.postIndex)
	route("GET /api/v1/reports/{digest}", s.getNativeReport)
	route("GET /api/v1/reports/{digest}/sbom", s.getSBOM)
	route("GET /api/v1/partial", s.listPartial)
	route("POST /api/v1/partial/{digest}/retry", s.retryPartial)
	hb := harbor.New(s.opts.harbor, d, st, log)
	route("GET "+harbor.Prefix+"/api/v1/metadata", hb.ServeMetadata)
	route("POST "+harbor.Prefix+"/api/v1/scan", hb.ServeScan)
	route("GET "+harbor.Prefix+"/api/v1/scan/{scan_request_id}/report", hb.ServeReport)
	route("GET /openapi/v1", serveOpenAPI)
	s.routes = append(s.routes, "GET /healthz")
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := st.Pool().Ping(r.Context()); err != nil {
			apierr.Write(w, http.StatusServiceUnavailable, "unavailable", "database: "+err.Error())
			return
		}
		w.Write([]byte("ok\n"))
	})
	return s, jsonFallback(mux)
}

// jsonFallback answers what mux has no route for (404) or no method for
// (405, with its Allow header) with a JSON error, as every other answer.
func jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's own answer: keep its status and Allow, not its text.
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			if a := rec.header.Get("Allow"); a != "" {
				w.Header().Set("Allow", a)
			}
			apierr.Write(w, http.StatusMethodNotAllowed, "method-not-allowed",
				fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")))
		case http.StatusNotFound, 0:
			apierr.Write(w, http.StatusNotFound, "not-found", fmt.Sprintf("no such endpoint: %s %s (see GET /openapi/v1)", r.Method, r.URL.Path))
		default:
			// A redirect (a cleaned path): pass it on as the mux made it.
			for k, v := range rec.header {
				if k != "Content-Type" && k != "Content-Length" {
					w.Header()[k] = v
				}
			}
			apierr.Write(w, rec.status, "redirect", "see "+rec.header.Get("Location"))
		}
	})
}

// statusRecorder keeps the status and headers a handler writes and drops
// its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(p), nil
}

// decodeBody reads a JSON body into v with the API's size limit, a
// content-type check, and errors that say where the JSON is wrong.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeBodyLimit(w, r, v, MaxBodySize, "a JSON document")
}

// decodeBodyLimit is decodeBody with its own size limit and a description of
// the document wanted, for the message when the body is empty.
func decodeBodyLimit(w http.ResponseWriter, r *http.Request, v any, limit int64, want string) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			apierr.Write(w, http.StatusUnsupportedMediaType, "bad-request", fmt.Sprintf("Content-Type %q: want application/json", ct))
			return false
		}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		var big *http.MaxBytesError
		msg := "request body: " + err.Error()
		switch {
		case errors.As(err, &big):
			apierr.Write(w, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("request body is larger than %d bytes", big.Limit))
			return false
		case errors.As(err, &syn):
			msg = fmt.Sprintf("request body: invalid JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			msg = fmt.Sprintf("request body: field %q: %s is not a valid %s (byte %d)", typ.Field, typ.Value, typ.Type, typ.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			msg = "request body: invalid JSON: the document ends early"
		case errors.Is(err, io.EOF):
			msg = "request body is empty: want " + want
		}
		apierr.Write(w, http.StatusBadRequest, "bad-request", msg)
		return false
	}
	if dec.More() {
		apierr.Write(w, http.StatusBadRequest, "bad-request", "request body: more than one JSON document")
		return false
	}
	return true
}

func (s *Server) digestParam(w http.ResponseWriter, r *http.Request) (report.Digest, bool) {
	d, err := report.ParseDigest(r.PathValue("digest"))
	if err != nil {
		apierr.Write(w, http.StatusBadRequest, "bad-request", "path: "+err.Error())
		return "", false
	}
	return d, true
}

func (s *Server) deleteIndexReports(w http.ResponseWriter, r *http.Request) {
	var ds []string
	if !decodeBody(w, r, &ds) {
		return
	}
	deleted := []report.Digest{}
	for i, raw := range ds {
		d, err := report.ParseDigest(raw)
		if err != nil {
			apierr.Write(w, http.StatusBadRequest, "bad-request", fmt.Sprintf("[%d]: %v", i, err))
			return
		}
		found, err := s.store.DeleteManifest(r.Context(), d)
		s.cache.AnswerChanged(d) // read your writes before the notification
		if err != nil {
			apierr.Write(w, http.StatusInternalServerError, "internal-error", err.Error())
			return
		}
		if found {
			deleted = append(deleted, d)
		}
	}
	apierr.WriteJSON(w, http.StatusOK, deleted)
}

func (s *Server) postIndex(w http.ResponseWriter, r *http.Request) {
	var req report.IndexRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Reference == "" {
		apierr.Write(w, http.StatusBadRequest, "bad-request", `field "reference": required, e.g. "registry.example.com/team/app:1.0"`)
		return
	}
	if _, err := name.ParseReference(req.Reference); err != nil {
		apierr.Write(w, http.StatusBadRequest, "bad-request", fmt.Sprintf("field \"reference\": %v", err))
		return
	}
	imgs, err := s.d.IndexReference(r.Context(), req.Reference, req.Platform)
	if err != nil {
		status, code := http.StatusBadGateway, "registry-error"
		var te *transport.Error
		switch {
		case errors.Is(err, intake.ErrRegistryNotAllowed):
			status, code = http.StatusForbidden, "registry-not-allowed"
		case errors.Is(err, intake.ErrQueueUnavailable):
			status, code = http.StatusServiceUnavailable, "unavailable"
		case errors.As(err, &te) && (te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
			status, code = http.StatusNotFound, "not-found"
		case errors.Is(err, resolve.ErrInvalid):
			status, code = http.StatusBadRequest, "bad-request"
		case errors.Is(err, context.Canceled):
			return
		}
		apierr.Write(w, status, code, err.Error())
		return
	}
	apierr.WriteJSON(w, http.StatusAccepted, report.IndexResponse{Reference: req.Reference, Manifests: imgs})
}

func (s *Server) listPartial(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			apierr.Write(w, http.StatusBadRequest, "bad-request", fmt.Sprintf("query limit=%q: want a number from 1 to 10000", v))
			return
		}
		limit = n
	}
	ps, err := s.store.ListPartial(r.Context(), limit)
	if err != nil {
		apierr.Write(w, http.StatusInternalServerError, "internal-error", err.Error())
		return
	}
	apierr.WriteJSON(w, http.StatusOK, ps)
}

func (s *Server) retryPartial(w http.ResponseWriter, r *http.Request) {
	d, ok := s.digestParam(w, r)
	if !ok {
		return
	}
	found, err := s.store.RequestRetry(r.Context(), d)
	s.cache.AnswerChanged(d)
	if err != nil {
		apierr.Write(w, http.StatusInternalServerError, "internal-error", err.Error())
		return
	}
	if !found {
		apierr.Write(w, http.StatusNotFound, "not-found", fmt.Sprintf("no partial report for %s", d))
		return
	}
	apierr.WriteJSON(w, http.StatusAccepted, map[string]string{"manifest_hash": string(d), "status": "retry requested"})
}
