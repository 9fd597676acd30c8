package devregistry

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Class is the kind of registry endpoint a request went to.
type Class string

// The endpoint classes a Counter tells apart.
const (
	// ClassBase is the API version check, /v2/.
	ClassBase Class = "base"
	// ClassManifests is /v2/<name>/manifests/<reference>.
	ClassManifests Class = "manifests"
	// ClassBlobs is /v2/<name>/blobs/<digest>: blob fetches and stats.
	ClassBlobs Class = "blobs"
	// ClassUploads is /v2/<name>/blobs/uploads/...: blob pushes.
	ClassUploads Class = "uploads"
	// ClassTags is /v2/<name>/tags/list.
	ClassTags Class = "tags"
	// ClassOther is anything else (catalog, referrers, unknown paths).
	ClassOther Class = "other"
)

// Classify returns the endpoint class of a registry URL path, and the
// repository name and the reference (tag or digest) it names when it has
// them.
func Classify(path string) (class Class, repo, ref string) {
	p := strings.TrimSuffix(path, "/")
	if p == "/v2" {
		return ClassBase, "", ""
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return ClassOther, "", ""
	}
	elems := strings.Split(rest, "/")
	n := len(elems)
	switch {
	case n >= 3 && elems[n-2] == "blobs" && elems[n-1] == "uploads":
		return ClassUploads, strings.Join(elems[:n-2], "/"), ""
	case n >= 4 && elems[n-3] == "blobs" && elems[n-2] == "uploads":
		return ClassUploads, strings.Join(elems[:n-3], "/"), ""
	case n >= 3 && elems[n-2] == "blobs":
		return ClassBlobs, strings.Join(elems[:n-2], "/"), elems[n-1]
	case n >= 3 && elems[n-2] == "manifests":
		return ClassManifests, strings.Join(elems[:n-2], "/"), elems[n-1]
	case n >= 3 && elems[n-2] == "tags" && elems[n-1] == "list":
		return ClassTags, strings.Join(elems[:n-2], "/"), ""
	}
	return ClassOther, "", ""
}

// Request is one entry of a Counter's log.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	Class  Class
	// Repo and Ref are the repository and the tag or digest named by the
	// path, when it names them.
	Repo string
	Ref  string
	// Status is the HTTP status written (200 when the handler wrote a body
	// without a header).
	Status int
	// Bytes is the number of body bytes written to the client.
	Bytes    int64
	Duration time.Duration
}

// Counter counts the requests a registry answers and the blob bytes it
// serves. Its zero value is ready to use and it is safe for concurrent use.
type Counter struct {
	mu         sync.Mutex
	requests   map[Class]int
	blobBytes  int64
	perDigest  map[string]int64
	blobFetch  map[string]int
	log        []Request
	inProgress int
}

// Wrap returns a handler that serves with h and records every request.
// Blob bytes are the body bytes actually written in answer to a successful
// (2xx) GET of /v2/<name>/blobs/<digest>, so a client that stops reading
// part way is counted for what it received.
func (c *Counter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		class, repo, ref := Classify(r.URL.Path)
		cw := &countingWriter{ResponseWriter: w}
		c.mu.Lock()
		c.inProgress++
		c.mu.Unlock()
		start := time.Now()
		defer func() {
			c.record(Request{
				Time:     start,
				Method:   r.Method,
				Path:     r.URL.Path,
				Class:    class,
				Repo:     repo,
				Ref:      ref,
				Status:   cw.status(),
				Bytes:    cw.n,
				Duration: time.Since(start),
			})
		}()
		h.ServeHTTP(cw, r)
	})
}

func (c *Counter) record(req Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inProgress--
	if c.requests == nil {
		c.requests = make(map[Class]int)
		c.perDigest = make(map[string]int64)
		c.blobFetch = make(map[string]int)
	}
	c.requests[req.Class]++
	if req.Class == ClassBlobs && req.Method == http.MethodGet && req.Status >= 200 && req.Status < 300 {
		c.blobBytes += req.Bytes
		c.perDigest[req.Ref] += req.Bytes
		c.blobFetch[req.Ref]++
	}
	c.log = append(c.log, req)
}

// Requests returns how many requests of a class were answered, any method
// and any status.
func (c *Counter) Requests(class Class) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[class]
}

// BlobBytes returns the total blob bytes served by successful GETs.
func (c *Counter) BlobBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blobBytes
}

// BlobBytesFor returns the bytes served for one blob, named by its digest
// ("sha256:...").
func (c *Counter) BlobBytesFor(digest string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.perDigest[digest]
}

// BlobFetches returns how many successful GETs one blob received.
func (c *Counter) BlobFetches(digest string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blobFetch[digest]
}

// BlobBytesByDigest returns a copy of the bytes served per blob digest.
func (c *Counter) BlobBytesByDigest() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.perDigest))
	for k, v := range c.perDigest {
		m[k] = v
	}
	return m
}

// Log returns a copy of the finished requests, in the order they finished.
func (c *Counter) Log() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.log...)
}

// InFlight returns how many requests are being served right now.
func (c *Counter) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inProgress
}

// Reset forgets everything counted so far (requests in flight are still
// recorded when they finish).
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = nil
	c.blobBytes = 0
	c.perDigest = nil
	c.blobFetch = nil
	c.log = nil
}

// countingWriter records the status and the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush forwards to the underlying writer when it can flush.
func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
