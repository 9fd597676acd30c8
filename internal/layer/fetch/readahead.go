package fetch

import (
	"errors"
	"io"
	"runtime"
	"sync"

	"github.com/stevedore-dev/stevedore/internal/layer/verify"
	"github.com/stevedore-dev/stevedore/report"
)

// Sizes of a readahead's buffers and how many it fills ahead of its
// reader: the memory it holds is bounded by their product.
const (
	readaheadChunk   = 256 << 10
	readaheadBuffers = 4
)

// errReadaheadClosed is what a Read after Close returns.
var errReadaheadClosed = errors.New("layer body read after Close")

// readahead reads a layer's body on a goroutine of its own, up to
// readaheadBuffers reads ahead of its reader, so that the body's own
// work (the network's or the disk's system calls, and the blob cache's
// copy and hashing, or the cached blob's verification) overlaps with
// decompressing the layer on the reader's goroutine, when the process has
// a spare core. Its reader sees the same bytes and the same errors, in the
// same order: each of the body's reads is handed over as it was, its error
// after its bytes. With GOMAXPROCS 1 the body is read directly.
type readahead struct {
	src  io.ReadCloser
	full chan chunk  // the body's reads, in order
	free chan []byte // empty buffers
	stop chan struct{}
	done chan struct{}

	cur    chunk // the read being delivered
	off    int   // what of cur.b was delivered
	err    error // the body's error, once delivered
	closed bool
	once   sync.Once
}

// chunk is one read of the body: its bytes, then its error.
type chunk struct {
	b   []byte
	err error
}

// newReadahead returns src read ahead, or src itself with GOMAXPROCS 1.
func newReadahead(src io.ReadCloser) io.ReadCloser {
	if runtime.GOMAXPROCS(0) < 2 {
		return src
	}
	ra := &readahead{
		src:  src,
		full: make(chan chunk, readaheadBuffers),
		free: make(chan []byte, readaheadBuffers),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range readaheadBuffers {
		ra.free <- make([]byte, readaheadChunk)
	}
	go ra.run()
	return ra
}

// run reads the body into free buffers until its error (io.EOF included)
// or Close.
func (ra *readahead) run() {
	defer close(ra.done)
	for {
		var b []byte
		select {
		case b = <-ra.free:
		case <-ra.stop:
			return
		}
		n, err := ra.src.Read(b[:cap(b)])
		select {
		case ra.full <- chunk{b: b[:n], err: err}:
		case <-ra.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read implements io.Reader.
func (ra *readahead) Read(p []byte) (int, error) {
	if ra.closed {
		return 0, errReadaheadClosed
	}
	if len(p) == 0 && ra.err == nil {
		return 0, nil
	}
	for ra.off == len(ra.cur.b) {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.cur.err != nil {
			ra.err = ra.cur.err
			return 0, ra.err
		}
		if ra.cur.b != nil {
			ra.free <- ra.cur.b[:0]
		}
		ra.cur, ra.off = <-ra.full, 0
	}
	n := copy(p, ra.cur.b[ra.off:])
	ra.off += n
	if ra.off == len(ra.cur.b) && ra.cur.err != nil {
		// The body's error comes with the last bytes of its read, as
		// the body returned it.
		ra.err = ra.cur.err
		return n, ra.err
	}
	return n, nil
}

// Close stops the reading goroutine, waiting for the body's read in
// progress, if any, to return (it does when bytes arrive, when the
// context ends, or when the stall watchdog gives up on the download),
// then closes the body. Layer reads end with the body's EOF or error,
// whether they succeed or the layer is bad; only a read abandoned early
// (a local failure: spooling) can find a read in progress.
func (ra *readahead) Close() error {
	ra.once.Do(func() {
		close(ra.stop)
		<-ra.done
		ra.closed = true
	})
	return ra.src.Close()
}

// VerifiedDigest passes on the body's (see cached).
func (ra *readahead) VerifiedDigest() report.Digest {
	if v, ok := ra.src.(verify.Verified); ok {
		return v.VerifiedDigest()
	}
	return ""
}
