package scannertest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
)

// Failures describes a scanner for which an unreadable file fails the
// layer's report (a package database, a release file), for CheckFailures.
type Failures struct {
	// Scanner is the scanner under test.
	Scanner scanner.Scanner
	// Path is a path the scanner matches.
	Path string
	// Limit is the largest file the scanner reads.
	Limit int64
	// Valid is a small file the scanner accepts.
	Valid []byte
	// Filler, repeated, makes a file that is valid but larger than Limit
	// (nil: Valid).
	Filler []byte
}

// CheckFailures checks that the scanner fails, with an error naming the
// file, on a file over the limit (without opening it), on a file whose
// Size understates a content over the limit, on an error opening the file
// and on an error part-way through reading it (both wrapped), and that it
// stops on a canceled context.
func CheckFailures(t *testing.T, c Failures) {
	t.Helper()
	ctx := context.Background()
	scan := func(ctx context.Context, f scanner.File) error {
		_, err := c.Scanner.Scan(ctx, []scanner.File{f})
		return err
	}
	filler := c.Filler
	if filler == nil {
		filler = c.Valid
	}

	big := FileFunc(c.Path, c.Limit+1, func() (io.ReadCloser, error) {
		t.Error("Open called on a file over the limit")
		return io.NopCloser(strings.NewReader("")), nil
	})
	if err := scan(ctx, big); err == nil || !strings.Contains(err.Error(), c.Path) {
		t.Errorf("a file over the limit: err = %v, want an error naming %s", err, c.Path)
	}

	liar := FileFunc(c.Path, int64(len(c.Valid)), func() (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(&repeat{b: filler}, 4*c.Limit)), nil
	})
	if err := scan(ctx, liar); err == nil || !strings.Contains(err.Error(), c.Path) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("a file larger than its size says: err = %v, want \"more than\" the limit, naming %s", err, c.Path)
	}

	errBoom := errors.New("boom")
	broken := FileFunc(c.Path, int64(len(c.Valid)), func() (io.ReadCloser, error) { return nil, errBoom })
	if err := scan(ctx, broken); !errors.Is(err, errBoom) || !strings.Contains(err.Error(), c.Path) {
		t.Errorf("an error opening the file: err = %v, want it wrapped, naming %s", err, c.Path)
	}
	failing := FileFunc(c.Path, int64(len(c.Valid))+10, func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(c.Valid), errReader{errBoom})), nil
	})
	if err := scan(ctx, failing); !errors.Is(err, errBoom) || !strings.Contains(err.Error(), c.Path) {
		t.Errorf("an error reading the file: err = %v, want it wrapped, naming %s", err, c.Path)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := scan(cctx, File(c.Path, c.Valid)); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled context: err = %v", err)
	}
}

// repeat reads b over and over.
type repeat struct {
	b   []byte
	off int
}

func (r *repeat) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Skips describes a language-package scanner that skips a file it cannot
// use (too large, unparsable) with a warning but fails on a file it cannot
// open or read, for CheckSkips.
type Skips struct {
	// Scanner is the scanner under test.
	Scanner scanner.Scanner
	// Path is a path the scanner matches.
	Path string
	// Limit is the largest file the scanner reads.
	Limit int64
	// Valid is a small file the scanner accepts.
	Valid []byte
	// Filler, repeated beyond Limit, makes a file larger than its Size
	// says (nil: a blank).
	Filler []byte
}

// CheckSkips checks that the scanner skips, with one warning naming the
// file and "more than the limit", a file over the limit (without opening
// it) and a file whose Size understates a content over the limit; that it
// fails, with an error naming the file and wrapping the cause, on an error
// opening the file and on one part-way through reading it; and that it
// stops on a canceled context.
func CheckSkips(t *testing.T, c Skips) {
	t.Helper()
	filler := c.Filler
	if filler == nil {
		filler = []byte(" ")
	}
	big := FileFunc(c.Path, c.Limit+1, func() (io.ReadCloser, error) {
		t.Error("Open called on a file over the limit")
		return nil, io.ErrUnexpectedEOF
	})
	liar := FileFunc(c.Path, 10, func() (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(&repeat{b: filler}, c.Limit+10)), nil
	})
	for _, f := range []scanner.File{big, liar} {
		res, err := c.Scanner.Scan(context.Background(), []scanner.File{f})
		if err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "more than the limit") || !strings.Contains(res.Warnings[0], c.Path) {
			t.Errorf("%s of size %d: %+v, %v; want one warning naming it, \"more than the limit\"", c.Path, f.Size(), res, err)
		}
	}
	errBoom := errors.New("boom")
	unopenable := FileFunc(c.Path, int64(len(c.Valid)), func() (io.ReadCloser, error) { return nil, errBoom })
	broken := FileFunc(c.Path, int64(len(c.Valid))+10, func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(c.Valid), errReader{errBoom})), nil
	})
	for what, f := range map[string]scanner.File{"opening": unopenable, "reading": broken} {
		if _, err := c.Scanner.Scan(context.Background(), []scanner.File{f}); !errors.Is(err, errBoom) || !strings.Contains(err.Error(), c.Path) {
			t.Errorf("an error %s the file: err = %v, want it wrapped, naming %s", what, err, c.Path)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Scanner.Scan(ctx, []scanner.File{File(c.Path, c.Valid)}); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled context: err = %v", err)
	}
}
