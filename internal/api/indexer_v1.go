package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/report"
)

// Media types of Clair's indexer answers, the first the default.
var (
	indexReportTypes = []string{"application/vnd.clair.index_report.v1+json", "application/json"}
	indexStateTypes  = []string{"application/vnd.clair.index_state.v1+json", "application/json"}
)

// Link relations Clair sets on POST index_report.
const (
	relIndexReport         = "https://projectquay.io/clair/v1/index_report"
	relVulnerabilityReport = "https://projectquay.io/clair/v1/vulnerability_report"
	indexReportPath        = "/indexer/api/v1/index_report/"
	vulnerabilityPath      = "/matcher/api/v1/vulnerability_report/"
)

// retryAfterSeconds is the Retry-After of a 202 answer.
const retryAfterSeconds = 10

// deadlineSlack is added to the index wait when the connection's deadlines
// are pushed back for it: time to read the report and write the answer.
const deadlineSlack = 30 * time.Second

// postIndexReport is Clair's POST index_report. A manifest whose report is
// current answers 201 at once. Otherwise the job is queued (once, however
// many requests ask: see internal/intake) and the request waits until the
// report is terminal, then answers 201 with it, as Clair does. "Prefer:
// respond-async" (RFC 7240) answers 202 at once with the report as it is
// now (and Preference-Applied); "Prefer: wait=N" shortens the wait. When the
// wait ends before the report is done, the answer is that 202 too, with
// Retry-After: the job goes on, and asking again (or GET) gets the report.
func (s *Server) postIndexReport(w http.ResponseWriter, r *http.Request) {
	etag := `"` + s.d.State() + `"`
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.Header().Set("ETag", etag)
		apierr.Write(w, http.StatusPreconditionFailed, "precondition-failed", "If-None-Match equals the current index state")
		return
	}
	var m report.Manifest
	if !decodeBody(w, r, &m) {
		return
	}
	if err := m.Validate(); err != nil {
		apierr.Write(w, http.StatusBadRequest, "bad-request", err.Error())
		return
	}
	h := w.Header()
	loc := indexReportPath + string(m.Hash)
	links := []string{fmt.Sprintf(`<%s>; rel="%s"`, loc, relIndexReport), fmt.Sprintf(`<%s>; rel="%s"`, vulnerabilityPath+string(m.Hash), relVulnerabilityReport)}
	if b, ok := s.currentStored(r.Context(), &m); ok {
		// A current report: its stored answer, streamed, as Index would
		// have answered it (201, nothing queued).
		h.Set("Location", loc)
		h["Link"] = links
		h.Set("ETag", etag)
		s.countPartial(r, b.State, reportbody.ClairViews(s.opts.servePartial))
		s.serveStored(w, r, m.Hash, http.StatusCreated, "application/json", false, b)
		return
	}
	prefs := parsePrefer(r.Header.Values("Prefer"))
	rep, queued, err := s.d.Index(r.Context(), &m)
	if errors.Is(err, intake.ErrRegistryNotAllowed) {
		apierr.Write(w, http.StatusForbidden, "registry-not-allowed", err.Error())
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "index request", "digest", m.Hash, "error", err)
		apierr.Write(w, http.StatusServiceUnavailable, "unavailable", "could not queue the manifest: "+err.Error())
		return
	}
	h.Set("Location", loc)
	h["Link"] = links
	h.Set("ETag", etag)
	if !queued {
		s.writeClair(w, r, http.StatusCreated, rep)
		return
	}
	if prefs.RespondAsync {
		h.Set("Preference-Applied", "respond-async")
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		s.writeClair(w, r, http.StatusAccepted, rep)
		return
	}
	wait := s.opts.maxWait
	if prefs.Wait > 0 && prefs.Wait < wait {
		wait = prefs.Wait
		h.Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
	}
	s.extendDeadlines(w, r, wait+deadlineSlack)
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	done, err := s.opts.waiter.Wait(ctx, m.Hash)
	switch {
	case err == nil:
		s.writeClair(w, r, http.StatusCreated, done)
		return
	case r.Context().Err() != nil:
		return // the client went away; the job goes on
	}
	s.log.InfoContext(r.Context(), "index wait ended before the report was done; answering 202", "digest", m.Hash, "wait", wait)
	if now, err := s.store.Report(r.Context(), m.Hash); err == nil {
		rep = now
	}
	h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	s.writeClair(w, r, http.StatusAccepted, rep)
}

// extendDeadlines pushes the connection's read and write deadlines back by d,
// so that a server-wide timeout does not cut a long wait (a read deadline
// that passes would also cancel the request's context).
func (s *Server) extendDeadlines(w http.ResponseWriter, r *http.Request, d time.Duration) {
	rc := http.NewResponseController(w)
	at := time.Now().Add(d)
	for _, set := range []func(time.Time) error{rc.SetWriteDeadline, rc.SetReadDeadline} {
		if err := set(at); err != nil && !errors.Is(err, http.ErrNotSupported) {
			s.log.DebugContext(r.Context(), "extend the connection's deadline", "error", err)
		}
	}
}

// waitDone is the waiter's test: the report is done when it is current for
// this scanner set (finished, or partial with its retry to come) or failed.
func (s *Server) waitDone(ctx context.Context, d report.Digest) (*report.Report, bool, error) {
	r, err := s.store.Report(ctx, d)
	if errors.Is(err, postgres.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return r, r.State == report.StateIndexError || s.d.Current(r), nil
}

// currentStored returns the stored answer on Clair's paths of m's report
// when that report is current (Dispatcher.Current) and m's layers are
// allowed: one query, no report decoded.
func (s *Server) currentStored(ctx context.Context, m *report.Manifest) (*postgres.Body, bool) {
	if s.d == nil || !s.d.Allowed(m) {
		return nil, false
	}
	b, err := s.openBody(ctx, m.Hash, reportbody.ClairViews(s.opts.servePartial), nil, false)
	if err != nil {
		if !errors.Is(err, postgres.ErrNotFound) {
			s.log.WarnContext(ctx, "read a stored answer; asking the dispatcher", "digest", m.Hash, "error", err)
		}
		return nil, false
	}
	rep := &report.Report{Hash: m.Hash, State: b.State, ScannerState: b.ScannerState, NextRetry: b.NextRetry}
	return b, s.d.Current(rep)
}

// writeClair writes r in Clair's shape, encoded for this request (the
// report is in memory already).
func (s *Server) writeClair(w http.ResponseWriter, r *http.Request, status int, rep *report.Report) {
	s.countPartial(r, rep.State, reportbody.ClairViews(s.opts.servePartial))
	data, err := reportbody.Clair(rep, s.opts.servePartial)
	if err != nil {
		apierr.Write(w, http.StatusInternalServerError, "internal-error", fmt.Sprintf("encode the report of %s: %v", rep.Hash, err))
		return
	}
	s.serveEncoded(w, r, status, "application/json", "", data)
}

// negotiate picks the answer's media type among offers, or answers 415
// (none acceptable, as Clair does) or 400 (a malformed Accept).
func negotiate(w http.ResponseWriter, r *http.Request, offers []string) (string, bool) {
	ct, err := pickContentType(r.Header, offers)
	switch {
	case errors.Is(err, errMediaType):
		apierr.Write(w, http.StatusUnsupportedMediaType, "unsupported-media-type", fmt.Sprintf("Accept: none of %v is acceptable", offers))
		return "", false
	case err != nil:
		apierr.Write(w, http.StatusBadRequest, "bad-request", err.Error())
		return "", false
	}
	return ct, true
}

func (s *Server) getIndexReport(w http.ResponseWriter, r *http.Request) {
	s.serveReport(w, r, indexReportTypes, reportbody.ClairViews(s.opts.servePartial))
}

// getNativeReport serves the report with Stevedore's fields: the scanner
// state that made it, when it was written, the attempt, and for a partial
// report its reasons and next retry, with package URLs.
func (s *Server) getNativeReport(w http.ResponseWriter, r *http.Request) {
	s.serveReport(w, r, []string{"application/json"}, []string{reportbody.ViewNative})
}

// deleteIndexReport answers 204 whether or not there was a report, as Clair
// does: the manifest is not indexed afterwards either way.
func (s *Server) deleteIndexReport(w http.ResponseWriter, r *http.Request) {
	d, ok := s.digestParam(w, r)
	if !ok {
		return
	}
	_, err := s.store.DeleteManifest(r.Context(), d)
	s.cache.AnswerChanged(d) // read your writes before the notification
	if err != nil {
		apierr.Write(w, http.StatusInternalServerError, "internal-error", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getIndexState(w http.ResponseWriter, r *http.Request) {
	ct, ok := negotiate(w, r, indexStateTypes)
	if !ok {
		return
	}
	etag := `"` + s.d.State() + `"`
	w.Header().Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", ct)
	apierr.WriteJSON(w, http.StatusOK, map[string]string{"state": s.d.State()})
}

func (s *Server) initMetrics() {
	m := s.opts.meter.Meter("github.com/stevedore-dev/stevedore/internal/api")
	var err error
	s.partialServed, err = m.Int64Counter("stevedore.api.partial_served",
		metric.WithDescription("IndexPartial reports served on Clair's paths, by how (as: finished or partial)"))
	if err != nil {
		s.log.Warn("metric stevedore.api.partial_served", "error", err)
	}
	if s.store == nil {
		return
	}
	count, err1 := m.Int64ObservableGauge("stevedore.reports.partial",
		metric.WithDescription("IndexPartial reports stored, by the data they wait for"))
	attempt, err2 := m.Int64ObservableGauge("stevedore.reports.partial.max_attempt",
		metric.WithDescription("The highest attempt count among IndexPartial reports, by the data they wait for"))
	overdue, err3 := m.Int64ObservableGauge("stevedore.reports.partial.overdue",
		metric.WithDescription("IndexPartial reports whose next retry is more than a minute past, by the data they wait for"))
	if err := errors.Join(err1, err2, err3); err != nil {
		s.log.Warn("partial report metrics", "error", err)
		return
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		stats, err := s.store.PartialStats(ctx)
		if err != nil {
			return err
		}
		for _, st := range stats {
			a := metric.WithAttributes(attribute.String("waiting_for", st.WaitingFor))
			o.ObserveInt64(count, st.Count, a)
			o.ObserveInt64(attempt, st.MaxAttempt, a)
			o.ObserveInt64(overdue, st.Overdue, a)
		}
		return nil
	}, count, attempt, overdue)
	if err != nil {
		s.log.Warn("partial report metrics", "error", err)
	}
}
