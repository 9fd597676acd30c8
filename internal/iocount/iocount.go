// Package iocount counts the bytes that pass through a reader or a writer.
package iocount

import "io"

// Count holds the number of bytes passed through so far.
type Count struct {
	// N is the number of bytes read or written.
	N int64
}

// add adds n to N and passes on the result of a Read or Write.
func (c *Count) add(n int, err error) (int, error) {
	c.N += int64(n)
	return n, err
}

// Reader reads from R and counts the bytes read in N.
type Reader struct {
	R io.Reader
	Count
}

// Read reads from R and adds what was read to N.
func (r *Reader) Read(p []byte) (int, error) { return r.add(r.R.Read(p)) }

// Writer writes to W and counts the bytes written in N.
type Writer struct {
	W io.Writer
	Count
}

// Write writes to W and adds what was written to N.
func (w *Writer) Write(p []byte) (int, error) { return w.add(w.W.Write(p)) }
