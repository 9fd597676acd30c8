package limitio

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// File is a file of a layer, as a scanner is given it (scanner.File).
type File interface {
	Path() string
	Size() int64
	Open() (io.ReadCloser, error)
}

// ParseFile opens f and parses at most limit bytes of it with parse. A file
// whose Size is over limit is refused without being opened; one whose
// content is over limit fails whatever parse made of the cut content (a cut
// may make the last line look corrupt). Every error starts with name, the
// scanner's, and names the file.
func ParseFile[T any](name string, f File, limit int64, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	if f.Size() > limit {
		return zero, fmt.Errorf("%s: %s: size %d bytes exceeds the limit of %d", name, f.Path(), f.Size(), limit)
	}
	rc, err := f.Open()
	if err != nil {
		return zero, fmt.Errorf("%s: opening %s: %w", name, f.Path(), err)
	}
	defer rc.Close()
	lr := NewReader(rc, limit)
	v, err := parse(lr)
	switch {
	case lr.Exceeded:
		return zero, fmt.Errorf("%s: %s: more than %d bytes", name, f.Path(), limit)
	case err != nil:
		return zero, fmt.Errorf("%s: parsing %s: %w", name, f.Path(), err)
	}
	return v, nil
}

// Open opens f, refusing it without opening it when its Size is over
// limit, for a caller that names the file itself: its errors say what
// failed (the size, opening) but not which file. It does not bound what is
// read: the caller does, with NewReader.
func Open(f File, limit int64) (io.ReadCloser, error) {
	if f.Size() > limit {
		return nil, fmt.Errorf("size %d bytes exceeds the limit of %d", f.Size(), limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	return rc, nil
}

// ReadFile reads f whole, at most limit bytes, for a caller that names the
// file itself: its errors say what failed (the size, opening, more than
// limit bytes, reading) but not which file.
func ReadFile(f File, limit int64) ([]byte, error) {
	rc, err := Open(f, limit)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	lr := NewReader(rc, limit)
	data, err := io.ReadAll(lr)
	switch {
	case lr.Exceeded:
		return nil, fmt.Errorf("more than %d bytes", limit)
	case err != nil:
		return nil, fmt.Errorf("reading: %w", err)
	}
	return data, nil
}

// Parsed is what ParseFiles made of one file.
type Parsed[T any] struct {
	// Path is the file's path.
	Path string
	// Value is what parse returned for it.
	Value T
}

// ParseFiles calls parse on each of files in path order (files itself is
// left as it is) and returns, in that order, what it made of each. It
// checks ctx before each file; its error is returned prefixed with name,
// the scanner's. The first error of parse is returned as it is.
func ParseFiles[F File, T any](ctx context.Context, name string, files []F, parse func(context.Context, F) (T, error)) ([]Parsed[T], error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b F) int { return strings.Compare(a.Path(), b.Path()) })
	out := make([]Parsed[T], 0, len(files))
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		v, err := parse(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, Parsed[T]{Path: f.Path(), Value: v})
	}
	return out, nil
}
