// Package scannertest provides in-memory implementations of scanner.File
// for scanner tests.
package scannertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// File returns a scanner.File at the layer path path whose contents are
// data. The returned file shares data; the caller must not modify it.
func File(path string, data []byte) scanner.File {
	return &file{
		path: path,
		size: int64(len(data)),
		open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		},
	}
}

// FromDisk reads the file at diskPath and returns it as a scanner.File at
// the layer path layerPath. A read error fails the test.
func FromDisk(t testing.TB, layerPath, diskPath string) scanner.File {
	t.Helper()
	data, err := os.ReadFile(diskPath)
	if err != nil {
		t.Fatalf("scannertest: reading %s for layer path %s: %v", diskPath, layerPath, err)
	}
	return File(layerPath, data)
}

// FileFunc returns a scanner.File at the layer path path that reports size
// as its size and calls open for its contents. It lets tests build files
// that are huge, that lie about their size, or that fail to open, without
// holding their contents in memory.
func FileFunc(path string, size int64, open func() (io.ReadCloser, error)) scanner.File {
	return &file{path: path, size: size, open: open}
}

type file struct {
	path string
	size int64
	open func() (io.ReadCloser, error)
}

func (f *file) Path() string                 { return f.path }
func (f *file) Size() int64                  { return f.size }
func (f *file) Open() (io.ReadCloser, error) { return f.open() }

// ScanLayer reads the layer fixture named name (a path under the
// fixture corpus, "layers/claircore_layer-with-cpe.tar") through the real
// layer reader with s alone, then scans what s matched. It returns the
// result and the paths of the matched files. Any error fails the test.
func ScanLayer(t testing.TB, s scanner.Scanner, name string) (*scanner.Result, []string) {
	t.Helper()
	return ScanBlob(t, s, ReadFixture(t, name), layer.Options{TempDir: t.TempDir()})
}

// ScanBlob reads blob, an uncompressed or compressed layer, through the
// real layer reader with s alone and opts, then scans what s matched. It
// returns the result and the paths of the matched files. Any error fails
// the test.
func ScanBlob(t testing.TB, s scanner.Scanner, blob []byte, opts layer.Options) (*scanner.Result, []string) {
	t.Helper()
	c, err := layer.Read(context.Background(), bytes.NewReader(blob), Digest(blob), []scanner.Scanner{s}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var paths []string
	for _, f := range c.Files[0] {
		paths = append(paths, f.Path())
	}
	res, err := s.Scan(context.Background(), c.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	return res, paths
}

// Digest returns the sha256 digest of b.
func Digest(b []byte) report.Digest {
	sum := sha256.Sum256(b)
	return report.Digest("sha256:" + hex.EncodeToString(sum[:]))
}

// LayerFile is a regular file of a test layer, for Tar.
type LayerFile struct {
	Path string
	Mode int64
	Body []byte
}

// Tar returns an uncompressed tar layer holding files, in order.
func Tar(t testing.TB, files ...LayerFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.Path, Mode: f.Mode, Size: int64(len(f.Body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ReadFixture returns the content of the fixture rel (a path under
// testdata/fixtures, as fixtures.Path takes it); a missing or unreadable
// fixture fails the test.
func ReadFixture(t testing.TB, rel string) []byte {
	t.Helper()
	return ReadFile(t, fixtures.Path(t, rel))
}

// ReadFile returns the content of the file at path p; an error fails the
// test.
func ReadFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
