package limitio

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// ParseFilesAtOnce is ParseFiles with up to n files parsed at once, for a
// parse that keeps nothing from one file to the next: it returns what
// ParseFiles returns, the same values in the same order, or the error of the
// first file in path order that failed (files after it may have been parsed
// too, and what was made of them is dropped). n below 2 is ParseFiles.
func ParseFilesAtOnce[F File, T any](ctx context.Context, name string, files []F, n int, parse func(context.Context, F) (T, error)) ([]Parsed[T], error) {
	if n < 2 || len(files) < 2 {
		return ParseFiles(ctx, name, files, parse)
	}
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b F) int { return strings.Compare(a.Path(), b.Path()) })
	vals := make([]T, len(files))
	errs := make([]error, len(files))
	var next atomic.Int64
	// failed is the lowest index that failed: no file after it is
	// started.
	var failed atomic.Int64
	failed.Store(int64(len(files)))
	var wg sync.WaitGroup
	for range min(n, len(files)) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= failed.Load() {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[i] = fmt.Errorf("%s: %w", name, err)
				} else {
					vals[i], errs[i] = parse(ctx, files[i])
				}
				if errs[i] != nil {
					for f := failed.Load(); i < f && !failed.CompareAndSwap(f, i); f = failed.Load() {
					}
					return
				}
			}
		})
	}
	wg.Wait()
	out := make([]Parsed[T], len(files))
	for i, f := range files {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out[i] = Parsed[T]{Path: f.Path(), Value: vals[i]}
	}
	return out, nil
}
