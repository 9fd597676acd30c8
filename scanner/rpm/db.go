package rpm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
)

// readDB returns the packages of the rpm database f. go-rpmdb reads a file
// by its path: a file the layer reader spooled to disk is read where it is
// (BerkeleyDB and NDB are only read); a file kept in memory, and any SQLite
// database (SQLite may write a -shm file beside it), is copied into a
// private temporary directory first, under the name rpm gives it.
//
// wal, when not nil, is the database's write-ahead log (rpmdb.sqlite-wal,
// from the same directory of the layer): rpm keeps its SQLite database in
// WAL mode, and what was committed but not yet checkpointed is only there.
// It is copied beside the copy of an SQLite database, under the name SQLite
// looks for, so that validation and go-rpmdb both read the database with
// it; it is ignored when f is not SQLite.
func readDB(ctx context.Context, f, wal scanner.File) ([]*rpmdb.PackageInfo, error) {
	rc, err := limitio.Open(f, MaxFileSize)
	if err != nil {
		return nil, err
	}
	defer rc.Close()

	path := ""
	var ra io.ReaderAt
	size := f.Size()
	if osf, ok := rc.(*os.File); ok {
		fi, err := osf.Stat()
		if err != nil {
			return nil, fmt.Errorf("stat: %w", err)
		}
		if fi.Size() > MaxFileSize {
			return nil, fmt.Errorf("size %d bytes exceeds the limit of %d", fi.Size(), MaxFileSize)
		}
		path, ra, size = osf.Name(), osf, fi.Size()
	}
	var fmtKind format
	if ra != nil {
		if fmtKind, err = detect(ra, size); err != nil {
			return nil, err
		}
	}
	if ra == nil || fmtKind == formatSQLite {
		dir, err := os.MkdirTemp("", "stevedore-rpm-*")
		if err != nil {
			return nil, fmt.Errorf("temporary directory: %w", err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, filepath.Base(f.Path()))
		// detect used ReadAt: rc is still at its start.
		out, err := copyBounded(path, rc)
		if err != nil {
			return nil, err
		}
		defer out.Close()
		fi, err := out.Stat()
		if err != nil {
			return nil, fmt.Errorf("stat: %w", err)
		}
		ra, size = out, fi.Size()
		if fmtKind, err = detect(ra, size); err != nil {
			return nil, err
		}
	}
	var walSize int64 = -1 // no log
	if wal != nil && fmtKind == formatSQLite {
		if walSize, err = copyWAL(path+"-wal", wal); err != nil {
			return nil, fmt.Errorf("write-ahead log %s: %w", wal.Path(), err)
		}
	}

	hasPackages, err := validate(ctx, fmtKind, ra, size, path, walSize)
	if err != nil {
		return nil, fmt.Errorf("%s database: %w", fmtKind, err)
	}
	if !hasPackages {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pkgs, err := list(path)
	if err != nil {
		return nil, fmt.Errorf("%s database: %w", fmtKind, err)
	}
	return pkgs, nil
}

// copyBounded copies at most MaxFileSize bytes of r to a new file at path
// and returns it open for reading.
func copyBounded(path string, r io.Reader) (*os.File, error) {
	out, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("temporary copy: %w", err)
	}
	lr := limitio.NewReader(r, MaxFileSize)
	if _, err := io.Copy(out, lr); err != nil {
		out.Close()
		if lr.Exceeded {
			return nil, fmt.Errorf("more than %d bytes", MaxFileSize)
		}
		return nil, fmt.Errorf("temporary copy: %w", err)
	}
	return out, nil
}

// copyWAL copies the write-ahead log f, at most MaxFileSize bytes, to a new
// file at path and returns its size.
func copyWAL(path string, f scanner.File) (int64, error) {
	rc, err := limitio.Open(f, MaxFileSize)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	out, err := copyBounded(path, rc)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	fi, err := out.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	return fi.Size(), nil
}

// errPanic is wrapped when go-rpmdb panicked on a file that validate
// accepted.
var errPanic = errors.New("the rpm database reader failed")

// list runs go-rpmdb on the validated database at path. A panic in the
// calling goroutine (header import) becomes an error.
//
// When go-rpmdb rejects a header that validate accepted (validate checks
// bounds, not every rule of rpm's header import), ListPackages returns the
// error and leaves its reading goroutine blocked on its channel for the rest
// of the process: go-rpmdb v0.1.1 has no way to stop it. validate mirrors
// go-rpmdb's checks (tags, types, region, offsets) so that this is rare:
// of 60,857 copies of the BerkeleyDB fixtures with one byte flipped, one
// got past validate to be refused by go-rpmdb (rpm's data-length sum), and
// none panicked or hung. A blocked goroutine holds at most one header.
func list(path string) (pkgs []*rpmdb.PackageInfo, err error) {
	defer func() {
		if p := recover(); p != nil {
			pkgs, err = nil, fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	db, err := rpmdb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	defer db.Close()
	pkgs, err = db.ListPackages()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return pkgs, nil
}
