// Package lines reads the scanners' line-based databases (apk's installed
// database, dpkg's status file): lines of bounded length, no NUL bytes, the
// context checked as the lines go by, errors that give the line.
package lines

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// checkEvery is how many lines pass between two checks of the context.
const checkEvery = 4096

// Scanner reads lines like bufio.Scanner with bufio.ScanLines ("\n" and
// "\r\n" removed), and stops with an error at a line longer than its
// maximum, at a line holding a NUL byte, and when its context is done.
type Scanner struct {
	ctx  context.Context
	sc   *bufio.Scanner
	max  int
	what string
	n    int
	err  error
	done bool // Scan has been false
}

// New returns a Scanner of r's lines, each at most maxLen bytes; what names
// the format for the NUL-byte error ("an apk database" gives "line 3: NUL
// byte: binary data, not an apk database").
func New(ctx context.Context, r io.Reader, maxLen int, what string) *Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, maxLen)), maxLen)
	return &Scanner{ctx: ctx, sc: sc, max: maxLen, what: what}
}

// Scan advances to the next line; it is false at the end of the input and
// after an error (Err tells them apart).
func (s *Scanner) Scan() bool {
	if s.done || !s.sc.Scan() {
		s.done = true
		return false
	}
	s.n++
	if s.n%checkEvery == 0 {
		if err := s.ctx.Err(); err != nil {
			s.err, s.done = err, true
			return false
		}
	}
	if bytes.IndexByte(s.sc.Bytes(), 0) >= 0 {
		s.err, s.done = fmt.Errorf("line %d: NUL byte: binary data, not %s", s.n, s.what), true
		return false
	}
	return true
}

// Bytes is the current line; it stays valid until the next Scan.
func (s *Scanner) Bytes() []byte { return s.sc.Bytes() }

// Line is the current line's number, from 1.
func (s *Scanner) Line() int { return s.n }

// Err is the error that stopped Scan, nil at the end of the input. The
// context's error is returned as it is; the others say which line.
func (s *Scanner) Err() error {
	if s.err != nil {
		return s.err
	}
	if err := s.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes", s.n+1, s.max)
		}
		return fmt.Errorf("after line %d: %w", s.n, err)
	}
	return nil
}
