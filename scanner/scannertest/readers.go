package scannertest

import "io"

// CountingReader counts the bytes read through it from R in N.
type CountingReader struct {
	R io.Reader
	N int64
}

// Read reads from R and adds what was read to N.
func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}

// Repeat returns a reader that yields b over and over, never ending; b must
// not be empty.
func Repeat(b []byte) io.Reader { return &repeat{b: b} }
