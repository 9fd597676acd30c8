package verify

import (
	"io"
	"runtime"
	"sync"
)

// Sizes of the buffers an Async copies the bytes it is given into, and
// how many may wait for the hashing goroutine at a time: the memory it
// holds is bounded by their product.
const (
	asyncChunk   = 512 << 10
	asyncBuffers = 4
)

// Async hands the bytes written to it to a writer (a Digester, or the blob
// cache's file and Digester) on a goroutine of its own, so that hashing a
// blob (a tenth of the CPU time of reading a gzip layer, with SHA
// extensions) overlaps with decompressing it when the process has a spare
// core. With GOMAXPROCS 1 it writes in Write.
//
// Write copies the bytes and returns; it blocks only when asyncBuffers
// chunks are waiting. Flush waits for every byte written to be hashed. Close
// stops the goroutine; it is safe to call more than once, and after Flush.
type Async struct {
	h    io.Writer
	work chan []byte // chunks to hash, in order
	free chan []byte // empty buffers
	done chan struct{}
	once sync.Once
	cur  []byte // the chunk being filled by Write
}

// NewAsync returns an Async writing to h; h's errors are ignored (a
// Digester never fails; a writer that can records its own).
func NewAsync(h io.Writer) *Async {
	a := &Async{h: h}
	if runtime.GOMAXPROCS(0) < 2 {
		return a
	}
	a.work = make(chan []byte, asyncBuffers)
	a.free = make(chan []byte, asyncBuffers)
	a.done = make(chan struct{})
	for range asyncBuffers {
		a.free <- make([]byte, 0, asyncChunk)
	}
	go func() {
		defer close(a.done)
		for b := range a.work {
			a.h.Write(b)
			a.free <- b[:0]
		}
	}()
	return a
}

// Write implements io.Writer; it never fails.
func (a *Async) Write(p []byte) (int, error) {
	if a.work == nil {
		return a.h.Write(p)
	}
	n := len(p)
	for len(p) > 0 {
		if a.cur == nil {
			a.cur = <-a.free
		}
		c := copy(a.cur[len(a.cur):cap(a.cur)], p)
		a.cur = a.cur[:len(a.cur)+c]
		p = p[c:]
		if len(a.cur) == cap(a.cur) {
			a.work <- a.cur
			a.cur = nil
		}
	}
	return n, nil
}

// Flush returns once the goroutine has given every byte written to the
// hash. Nothing may be written after it.
func (a *Async) Flush() {
	if a.work != nil {
		if len(a.cur) > 0 {
			a.work <- a.cur
			a.cur = nil
		}
		a.Close()
	}
}

// Close stops the hashing goroutine, after it has hashed what it was
// given.
func (a *Async) Close() {
	if a.work == nil {
		return
	}
	a.once.Do(func() {
		close(a.work)
		<-a.done
	})
}
