// Package limitio bounds how much of a file a scanner reads.
package limitio

import (
	"errors"
	"io"
)

// ErrTooLarge is returned by a Reader whose source has more than its limit.
var ErrTooLarge = errors.New("file too large")

// Reader reads at most a limit of bytes from its source and fails with
// ErrTooLarge, setting Exceeded, if the source has more. Unlike
// io.LimitReader it tells a file that ends at the limit from one that goes on.
type Reader struct {
	r    io.Reader
	left int64
	// Exceeded is set once the source was found to be over the limit.
	Exceeded bool
}

// NewReader returns a Reader of at most n bytes of r.
func NewReader(r io.Reader, n int64) *Reader { return &Reader{r: r, left: n} }

// Read implements io.Reader.
func (l *Reader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var b [1]byte
		n, err := l.r.Read(b[:])
		if n > 0 {
			l.Exceeded = true
			return 0, ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
