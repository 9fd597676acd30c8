package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/semaphore"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/report"
)

// DefaultAnswerBytes bounds the bytes of report answers the API holds in
// memory at once (WithAnswerBytes).
const DefaultAnswerBytes = 64 << 20

// answerLimiter bounds the bytes of report answers held in memory at once: a
// weighted semaphore, each answer weighing what it holds (a stored answer
// streamed chunk by chunk: one chunk at most; an answer encoded for the
// request: all of it, at most the whole bound). Waiters are served first in,
// first out, and no answer weighs more than the bound, so an answer waits at
// most until those ahead of it have finished; a small one never waits behind
// a big one that cannot start. Waiting ends with the request's context.
type answerLimiter struct {
	sem *semaphore.Weighted
	max int64
}

func newAnswerLimiter(max int64) *answerLimiter {
	if max < postgres.BodyChunkSize {
		max = postgres.BodyChunkSize
	}
	return &answerLimiter{sem: semaphore.NewWeighted(max), max: max}
}

// acquire waits until n bytes (at most the bound) may be held; release gives
// them back.
func (l *answerLimiter) acquire(ctx context.Context, n int64) (release func(), err error) {
	n = max(1, min(n, l.max))
	if err := l.sem.Acquire(ctx, n); err != nil {
		return nil, fmt.Errorf("wait for %d bytes of answers in flight (of %d): %w", n, l.max, err)
	}
	return func() { l.sem.Release(n) }, nil
}

// ifNoneMatch parses If-None-Match into the quoted entity tags it names
// (weak ones compared as strong, as a GET may) and whether it is "*".
func ifNoneMatch(r *http.Request) (tags []string, any bool) {
	for _, v := range r.Header.Values("If-None-Match") {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			switch {
			case t == "*":
				any = true
			case t != "":
				tags = append(tags, `"`+strings.Trim(t, `"`)+`"`)
			}
		}
	}
	return tags, any
}

// gunzipWeight is what decompressing a stored answer for its request adds
// to its weight in the answer limiter (the decompressor's window and
// buffers).
const gunzipWeight = 64 << 10

// storedCoding is how a stored answer b is sent in answer to r: its bytes as
// stored (gzip when r accepts it, or an answer stored before answers were
// compressed), or decompressed while it is streamed (gunzip). Its entity tag
// names that representation: the stored ETag, strong, for the JSON as it
// is; the same tag weak (W/) for the gzip bytes, which are the same JSON
// content-coded (RFC 9110 section 8.8.3: a strong tag names one
// representation; a weak one may be shared by semantically equivalent
// ones). If-None-Match compares tags weakly, so a client's tag from either
// coding matches the answer's in both.
func storedCoding(r *http.Request, b *postgres.Body) (etag string, gunzip bool) {
	if b.Encoding != reportbody.EncodingGzip {
		return b.ETag, false
	}
	if acceptsGzip(r.Header) {
		return "W/" + b.ETag, false
	}
	return b.ETag, true
}

// serveStored answers with a stored answer of a report, streamed chunk by
// chunk with its Content-Length, under the answer limiter: gzip compressed
// as stored (Content-Encoding: gzip) when the request accepts it, else
// decompressed while streamed (one chunk and the decompressor in memory
// whatever the answer's size). With withETag, the ETag is the answer's (see
// storedCoding). The headers set on w are kept. An error once the body has
// begun aborts the connection (the client sees a short body) and is logged.
func (s *Server) serveStored(w http.ResponseWriter, r *http.Request, d report.Digest, status int, ct string, withETag bool, b *postgres.Body) {
	etag, gunzip := storedCoding(r, b)
	if !withETag {
		etag = ""
	}
	weight, length := min(b.Size, postgres.BodyChunkSize), b.Size
	if gunzip {
		weight, length = weight+gunzipWeight, b.IdentitySize
	}
	w.Header().Add("Vary", "Accept-Encoding")
	release, ok := s.startAnswer(w, r, weight, ct, length, etag)
	if !ok {
		return
	}
	defer release()
	if b.Encoding != reportbody.EncodingIdentity && !gunzip {
		w.Header().Set("Content-Encoding", b.Encoding)
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	chunks := &chunkReader{ctx: r.Context(), store: s.store, b: b, next: b.First}
	var err error
	if gunzip {
		err = gunzipTo(w, chunks, b.IdentitySize)
	} else {
		_, err = io.Copy(w, chunks)
	}
	if err != nil {
		s.abort(r, d, b, chunks.seq, err)
	}
}

// gunzipTo writes to w the decompressed bytes of the gzip stream of src,
// which must be size bytes.
func gunzipTo(w io.Writer, src io.Reader, size int64) error {
	zr, err := gzip.NewReader(src)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	n, err := io.Copy(w, zr)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	if n != size {
		return fmt.Errorf("decompress: %d bytes, stored as %d", n, size)
	}
	return nil
}

// chunkReader reads the bytes of a stored answer chunk by chunk: the first
// is given, each other one is read from the store when it is reached.
type chunkReader struct {
	ctx   context.Context
	store Store
	b     *postgres.Body
	// next is what remains of chunk seq.
	next []byte
	seq  int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.next) == 0 {
		if err := c.advance(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.next)
	c.next = c.next[n:]
	return n, nil
}

// WriteTo writes the chunks to w as they are (no copy through a buffer).
func (c *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		n, err := w.Write(c.next)
		total += int64(n)
		c.next = c.next[n:]
		if err != nil {
			return total, err
		}
		if err := c.advance(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
	}
}

// advance reads the next chunk from the store, or returns io.EOF after the
// last.
func (c *chunkReader) advance() error {
	if c.seq+1 >= c.b.Chunks {
		return io.EOF
	}
	data, err := c.store.BodyChunk(c.ctx, c.b.ID, c.seq+1)
	if err != nil {
		return err
	}
	c.next, c.seq = data, c.seq+1
	return nil
}

// startAnswer takes size bytes of the answer limiter and sets the headers
// of an answer of length bytes: ct, its Content-Length and etag as its ETag
// unless it is "". When the limiter refuses, it answers 503 (unless the
// client is gone) and returns false; else the caller calls release when
// done.
func (s *Server) startAnswer(w http.ResponseWriter, r *http.Request, size int64, ct string, length int64, etag string) (release func(), ok bool) {
	release, err := s.answers.acquire(r.Context(), size)
	if err != nil {
		if r.Context().Err() == nil {
			apierr.Write(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		}
		return nil, false
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if etag != "" {
		h.Set("ETag", etag)
	}
	return release, true
}

// loadReport reads the report of d; when there is none, or reading fails,
// it answers 404 or 500 and returns false.
func (s *Server) loadReport(w http.ResponseWriter, r *http.Request, d report.Digest) (*report.Report, bool) {
	rep, err := s.store.Report(r.Context(), d)
	if errors.Is(err, postgres.ErrNotFound) {
		apierr.Write(w, http.StatusNotFound, "not-found", fmt.Sprintf("no index report for %s", d))
		return nil, false
	}
	if err != nil {
		apierr.Write(w, http.StatusInternalServerError, "internal-error", err.Error())
		return nil, false
	}
	return rep, true
}

// abort ends an answer whose body cannot be finished: the connection is
// closed, so the client sees a body shorter than its Content-Length.
func (s *Server) abort(r *http.Request, d report.Digest, b *postgres.Body, seq int, err error) {
	if r.Context().Err() == nil {
		s.log.WarnContext(r.Context(), "report answer aborted mid-stream", "digest", d, "view", b.View,
			"chunk", seq, "chunks", b.Chunks, "size", b.Size, "error", err)
	} else {
		s.log.DebugContext(r.Context(), "report answer aborted: the client went away", "digest", d, "chunk", seq, "error", err)
	}
	panic(http.ErrAbortHandler)
}

// serveEncoded answers with data, an answer encoded for this request (a
// report with no stored answer), under the answer limiter.
func (s *Server) serveEncoded(w http.ResponseWriter, r *http.Request, status int, ct, etag string, data []byte) {
	release, ok := s.startAnswer(w, r, int64(len(data)), ct, int64(len(data)), etag)
	if !ok {
		return
	}
	defer release()
	w.WriteHeader(status)
	w.Write(data)
}

// serveReport answers a GET of a report in one of views (the preferred
// first; see reportbody.ClairViews), with its ETag and a 304 when
// If-None-Match names it. A terminal report is served from its stored
// answer: the ETag is compared before any of it is read, and it is streamed.
// A report with none (not terminal yet, or stored before answers were kept)
// is encoded for the request, and a terminal one's answers are stored then.
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request, offers, views []string) {
	d, ok := s.digestParam(w, r)
	if !ok {
		return
	}
	ct, ok := negotiate(w, r, offers)
	if !ok {
		return
	}
	tags, anyTag := ifNoneMatch(r)
	b, err := s.openBody(r.Context(), d, views, tags, anyTag)
	switch {
	case err == nil && b.NotModified:
		etag, _ := storedCoding(r, b)
		w.Header().Set("ETag", etag)
		w.Header().Add("Vary", "Accept-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	case err == nil:
		s.countPartial(r, b.State, views)
		s.serveStored(w, r, d, http.StatusOK, ct, true, b)
		return
	case !errors.Is(err, postgres.ErrNotFound):
		apierr.Write(w, http.StatusInternalServerError, "internal-error", err.Error())
		return
	}
	rep, ok := s.loadReport(w, r, d)
	if !ok {
		return
	}
	view := views[0]
	if view != reportbody.ViewNative {
		view = reportbody.ClairViewOf(rep, view == reportbody.ViewClairPartial)
	}
	body, err := s.encodeAndKeep(r, rep, view)
	if err != nil {
		apierr.Write(w, http.StatusInternalServerError, "internal-error", err.Error())
		return
	}
	// Encoded for this request, the answer is sent as it is (identity),
	// though it would be compressed once stored: Vary says so.
	w.Header().Add("Vary", "Accept-Encoding")
	if etagMatches(strings.Join(r.Header.Values("If-None-Match"), ","), body.ETag) {
		w.Header().Set("ETag", body.ETag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.countPartial(r, rep.State, views)
	s.serveEncoded(w, r, http.StatusOK, ct, body.ETag, body.Data)
}

// encodeAndKeep encodes rep, a report read from the store, in view, and
// when it is terminal stores its answers (a report stored before answers
// were kept; a failure to store is logged, not answered).
func (s *Server) encodeAndKeep(r *http.Request, rep *report.Report, view string) (reportbody.Body, error) {
	if !rep.State.Terminal() {
		return reportbody.Encode(rep, view)
	}
	var out reportbody.Body
	var all []reportbody.Body
	for _, v := range reportbody.Stored(rep) {
		b, err := reportbody.Encode(rep, v)
		if err != nil {
			return reportbody.Body{}, err
		}
		if v == view {
			out = b
		}
		if b, err = s.compressor.Gzip(b); err != nil {
			return reportbody.Body{}, err
		}
		all = append(all, b)
	}
	if err := s.store.StoreBodies(r.Context(), rep, all); err != nil {
		s.log.WarnContext(r.Context(), "keep the answers of a report stored without them", "digest", rep.Hash, "error", err)
	}
	if out.Data == nil {
		return reportbody.Encode(rep, view)
	}
	return out, nil
}

// countPartial counts an IndexPartial report served on Clair's paths.
func (s *Server) countPartial(r *http.Request, state report.State, views []string) {
	if state != report.StateIndexPartial || views[0] == reportbody.ViewNative {
		return
	}
	as := "finished"
	if s.opts.servePartial {
		as = "partial"
	}
	s.partialServed.Add(r.Context(), 1, metric.WithAttributes(attribute.String("as", as)))
}
