package limitio

import (
	"fmt"
	"io"
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

// ReadFile reads f whole, at most limit bytes, for a caller that names the
// file itself: its errors say what failed (the size, opening, more than
// limit bytes, reading) but not which file.
func ReadFile(f File, limit int64) ([]byte, error) {
	if f.Size() > limit {
		return nil, fmt.Errorf("size %d bytes exceeds the limit of %d", f.Size(), limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
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
