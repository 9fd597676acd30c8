package langpkg

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
)

// ReadFunc reads one matched file and returns its packages. An error made by
// Skip skips the file with a warning; any other error fails the scan. warn
// takes the warnings the function adds itself (a file partly read).
type ReadFunc func(f scanner.File, warn *Warnings) ([]*report.Package, error)

// Scan is the skeleton of a scanner that reads its files one at a time: it
// reads files in path order with read, stops when ctx ends (an error
// prefixed with name), skips a file larger than maxSize (when maxSize > 0)
// with a warning without opening it, turns an error made by Skip into the
// warning "name: path: reason; skipped", and returns the packages found
// and the warnings, at most MaxWarnings of them.
func Scan(ctx context.Context, name string, files []scanner.File, maxSize int64, read ReadFunc) (*scanner.Result, error) {
	var warn Warnings
	found, err := limitio.ParseFiles(ctx, name, files, func(_ context.Context, f scanner.File) ([]*report.Package, error) {
		if maxSize > 0 && f.Size() > maxSize {
			warn.Addf("%s: %s: %d bytes, more than the limit of %d; skipped", name, f.Path(), f.Size(), maxSize)
			return nil, nil
		}
		pkgs, err := read(f, &warn)
		var skip *skipError
		if errors.As(err, &skip) {
			warn.Addf("%s: %s: %v; skipped", name, f.Path(), skip.err)
			return nil, nil
		}
		return pkgs, err
	})
	if err != nil {
		return nil, err
	}
	res := &scanner.Result{}
	for _, f := range found {
		res.Packages = append(res.Packages, f.Value...)
	}
	res.Warnings = warn.List()
	return res, nil
}

// Skip marks err as a reason to skip a file with a warning, for a ReadFunc.
func Skip(err error) error { return &skipError{err: err} }

type skipError struct{ err error }

func (e *skipError) Error() string { return e.err.Error() }
func (e *skipError) Unwrap() error { return e.err }

// ParseError is a file that cannot be used: it is skipped with a warning,
// the layer is not failed. The scanners that parse whole files (composer,
// conda, dotnet, rust, python, ruby) return it, each under its own name.
type ParseError struct {
	Reason string
	// Err, when not nil, is the error behind Reason.
	Err error
}

// Error returns the reason, and the error behind it.
func (e *ParseError) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

// Unwrap returns the error behind the reason.
func (e *ParseError) Unwrap() error { return e.Err }

// SkipParse returns err made by Skip when it is or wraps a *ParseError, and
// err unchanged otherwise (nil stays nil).
func SkipParse(err error) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		return Skip(err)
	}
	return err
}

// ReadAll reads f whole, at most limit bytes, for the scanner called name.
// A file over limit, by its Size or its content, is a *ParseError; an error
// opening or reading it names the scanner and the file.
func ReadAll(name string, f scanner.File, limit int64) ([]byte, error) {
	if f.Size() > limit {
		return nil, &ParseError{Reason: fmt.Sprintf("%d bytes, more than the limit of %d", f.Size(), limit)}
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: opening %s: %w", name, f.Path(), err)
	}
	defer rc.Close()
	lr := limitio.NewReader(rc, limit)
	b, err := io.ReadAll(lr)
	if lr.Exceeded {
		return nil, &ParseError{Reason: fmt.Sprintf("more than the limit of %d bytes", limit)}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", name, f.Path(), err)
	}
	return b, nil
}

// ScanWhole is Scan for a scanner that reads each file whole, at most limit
// bytes (ReadAll), and parses it with parse: a *ParseError, from reading or
// parsing, skips the file with a warning; pkg makes the package of each item
// parse found in the file at path.
func ScanWhole[T any](ctx context.Context, name string, files []scanner.File, limit int64, parse func([]byte) ([]T, error), pkg func(item T, path string) *report.Package) (*scanner.Result, error) {
	return Scan(ctx, name, files, 0, func(f scanner.File, _ *Warnings) ([]*report.Package, error) {
		b, err := ReadAll(name, f, limit)
		if err != nil {
			return nil, SkipParse(err)
		}
		items, err := parse(b)
		if err != nil {
			return nil, SkipParse(err)
		}
		out := make([]*report.Package, 0, len(items))
		for _, it := range items {
			out = append(out, pkg(it, f.Path()))
		}
		return out, nil
	})
}
