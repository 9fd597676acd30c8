package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// readFixture returns the bytes of the corpus fixture rel (see
// internal/testing/fixtures); a missing fixture fails the test.
func readFixture(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(fixtures.Path(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// alpineLayer returns the uncompressed layer.tar inside trivy's docker-save
// tarball of alpine:3.10 (Alpine 3.10.4).
//
// Fixture: layers/trivy_alpine-310.tar.gz, from aquasecurity/trivy
// pkg/fanal/test/testdata/alpine-310.tar.gz at dc3c56eed58a (Apache-2.0).
func alpineLayer(tb testing.TB) []byte {
	tb.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(readFixture(tb, "layers/trivy_alpine-310.tar.gz")))
	if err != nil {
		tb.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err != nil {
			tb.Fatalf("no layer.tar in the alpine docker-save tarball: %v", err)
		}
		if strings.HasSuffix(hdr.Name, "/layer.tar") {
			b, err := io.ReadAll(tr)
			if err != nil {
				tb.Fatal(err)
			}
			return b
		}
	}
}

// memberOf returns the content of one regular file of a tar, read
// independently of the code under test.
func memberOf(tb testing.TB, tarball []byte, name string) []byte {
	tb.Helper()
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		hdr, err := tr.Next()
		if err != nil {
			tb.Fatalf("%s not in tar: %v", name, err)
		}
		if strings.TrimPrefix(hdr.Name, "./") == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				tb.Fatal(err)
			}
			return b
		}
	}
}

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

func sha256Digest(b []byte) report.Digest {
	s := sha256.Sum256(b)
	return report.Digest("sha256:" + hex.EncodeToString(s[:]))
}

func sha512Digest(b []byte) report.Digest {
	s := sha512.Sum512(b)
	return report.Digest("sha512:" + hex.EncodeToString(s[:]))
}

// entry is one member of a synthetic tar.
type entry struct {
	name     string
	typ      byte
	body     string
	linkname string
}

func makeTar(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Linkname: e.linkname}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// testScanner is a scanner whose Match is a function; it records the paths it
// was asked about.
type testScanner struct {
	name  string
	match func(string) bool

	mu    sync.Mutex
	asked []string
}

func (s *testScanner) Info() scanner.Info {
	return scanner.Info{Name: s.name, Version: "1", Kind: scanner.KindPackage}
}

func (s *testScanner) Match(p string) bool {
	s.mu.Lock()
	s.asked = append(s.asked, p)
	s.mu.Unlock()
	return s.match(p)
}

func (s *testScanner) Scan(context.Context, []scanner.File) (*scanner.Result, error) {
	return &scanner.Result{}, nil
}

func exactly(name string, paths ...string) *testScanner {
	return &testScanner{name: name, match: func(p string) bool {
		for _, q := range paths {
			if p == q {
				return true
			}
		}
		return false
	}}
}

func everything() *testScanner {
	return &testScanner{name: "all", match: func(string) bool { return true }}
}

// fileView is a comparable view of a matched file.
type fileView struct {
	Path string
	Size int64
	Body string
}

func viewFiles(tb testing.TB, fs []scanner.File) []fileView {
	tb.Helper()
	var out []fileView
	for _, f := range fs {
		out = append(out, fileView{Path: f.Path(), Size: f.Size(), Body: string(readAll(tb, f))})
	}
	return out
}

func readAll(tb testing.TB, f scanner.File) []byte {
	tb.Helper()
	rc, err := f.Open()
	if err != nil {
		tb.Fatalf("open %s: %v", f.Path(), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatalf("read %s: %v", f.Path(), err)
	}
	return b
}

func mustRead(tb testing.TB, blob []byte, ss []scanner.Scanner, opts Options) *Contents {
	tb.Helper()
	c, err := Read(context.Background(), bytes.NewReader(blob), sha256Digest(blob), ss, opts)
	if err != nil {
		tb.Fatalf("Read: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// checkCanceled fails the test unless Read gave no contents and an error
// that is context.Canceled and not ErrBadLayer.
func checkCanceled(t *testing.T, c *Contents, err error) {
	t.Helper()
	if c != nil || !errors.Is(err, context.Canceled) || errors.Is(err, ErrBadLayer) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// readCanceledInWalk reads blob with a scanner that cancels the read when
// the walk reaches etc/os-release (and keeps every file when keep), checks
// that the read fails as canceled (checkCanceled) and returns its error.
func readCanceledInWalk(t *testing.T, blob []byte, keep bool, opts Options) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &testScanner{name: "cancel", match: func(p string) bool {
		if p == "etc/os-release" {
			cancel()
		}
		return keep
	}}
	c, err := Read(ctx, bytes.NewReader(blob), sha256Digest(blob), []scanner.Scanner{s}, opts)
	checkCanceled(t, c, err)
	return err
}
