// Package randaccess gives a scanner random access to a file of a layer (a
// zip archive, an ELF binary) without reading it into memory.
package randaccess

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
)

// ErrTooLarge is wrapped by Open when a file that must be copied is larger
// than the limit.
var ErrTooLarge = errors.New("file too large")

// Reader is random access to a file's contents.
type Reader struct {
	io.ReaderAt
	// Size is the number of bytes of the contents.
	Size  int64
	close func() error
}

// Close releases the contents (closes the file, removes a temporary copy).
func (r *Reader) Close() error { return r.close() }

// Open returns random access to f's contents. When f.Open gives an
// io.ReaderAt (the layer reader's files do: a section of the spool file or an
// in-memory bytes.Reader) it is used as it is, with f.Size() as its size.
// Otherwise the contents are copied to a temporary file in dir (os.TempDir()
// when empty), at most limit bytes: a longer file is an error wrapping
// ErrTooLarge. The caller closes the Reader.
func Open(f scanner.File, limit int64, dir string) (*Reader, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", f.Path(), err)
	}
	if ra, ok := rc.(io.ReaderAt); ok {
		return &Reader{ReaderAt: ra, Size: f.Size(), close: rc.Close}, nil
	}
	defer rc.Close()
	if f.Size() > limit {
		return nil, fmt.Errorf("copying %s for random access: %d bytes: %w (limit %d)", f.Path(), f.Size(), ErrTooLarge, limit)
	}
	tmp, err := os.CreateTemp(dir, "stevedore-scan-*")
	if err != nil {
		return nil, fmt.Errorf("copying %s for random access: %w", f.Path(), err)
	}
	cleanup := func() error {
		cerr := tmp.Close()
		if err := os.Remove(tmp.Name()); err != nil {
			return err
		}
		return cerr
	}
	lr := limitio.NewReader(rc, limit)
	n, err := io.Copy(tmp, lr)
	if err != nil {
		cleanup()
		if lr.Exceeded {
			return nil, fmt.Errorf("copying %s for random access: %w (limit %d)", f.Path(), ErrTooLarge, limit)
		}
		return nil, fmt.Errorf("copying %s for random access: %w", f.Path(), err)
	}
	return &Reader{ReaderAt: tmp, Size: n, close: cleanup}, nil
}
