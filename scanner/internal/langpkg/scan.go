package langpkg

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
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
	files = append([]scanner.File(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path() < files[j].Path() })
	res := &scanner.Result{}
	var warn Warnings
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if maxSize > 0 && f.Size() > maxSize {
			warn.Addf("%s: %s: %d bytes, more than the limit of %d; skipped", name, f.Path(), f.Size(), maxSize)
			continue
		}
		pkgs, err := read(f, &warn)
		var skip *skipError
		switch {
		case errors.As(err, &skip):
			warn.Addf("%s: %s: %v; skipped", name, f.Path(), skip.err)
			continue
		case err != nil:
			return nil, err
		}
		res.Packages = append(res.Packages, pkgs...)
	}
	res.Warnings = warn.List()
	return res, nil
}

// Skip marks err as a reason to skip a file with a warning, for a ReadFunc.
func Skip(err error) error { return &skipError{err: err} }

type skipError struct{ err error }

func (e *skipError) Error() string { return e.err.Error() }
func (e *skipError) Unwrap() error { return e.err }
