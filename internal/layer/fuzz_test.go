package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
)

// FuzzRead feeds arbitrary blobs to Read. Invariants: no panic; with the
// blob's own digest, either Contents and no error, or an error wrapping
// ErrBadLayer and no Contents; with any other digest, always an error
// wrapping ErrDigestMismatch and no Contents; every kept file reads back at
// its size; no temp file outlives Close or a failed Read.
//
// A FileMatcher (newSniffer) reads heads and looks for markers in every
// executable file.
//
// Seeds: the small layer fixtures (quay/claircore whiteout/testdata,
// pkg/tarfs/testdata and rpm/testdata at 0f12d7bc346d; aquasecurity/trivy
// pkg/fanal/walker/testdata/test.tar at dc3c56eed58a; all Apache-2.0), plain,
// gzip- and zstd-compressed, and a synthetic tar with a hardlink.
func FuzzRead(f *testing.F) {
	for _, name := range []string{
		"layers/claircore_whiteout.layer",
		"layers/claircore_whiteout_advanced.layer",
		"layers/claircore_whiteout_opaque.layer",
		"layers/claircore_tarfs_bad_name.tar",
		"layers/claircore_tarfs_oddlayer.tar",
		"layers/claircore_dangling_symlink.tar",
		"layers/trivy_walker_test.tar",
	} {
		b := readFixture(f, name)
		f.Add(b)
		f.Add(gzipBytes(f, b))
		f.Add(zstdBytes(f, b))
	}
	f.Add(makeTar(f,
		entry{name: "./etc/os-release", body: "ID=alpine\n"},
		entry{name: "usr/lib/os-release", typ: tar.TypeLink, linkname: "/etc/os-release"},
		entry{name: "a/.wh..wh..opq"},
	))
	f.Add(makeModeTar(f,
		fmEntry{name: "usr/bin/a", mode: 0o755, body: elfBody("NOTE", 100, "", 0)},
		fmEntry{name: "usr/bin/b", mode: 0o755, body: elfBody("", 200, "MARKER!", 150)},
		fmEntry{name: "usr/bin/c", mode: 0o755, body: elfBody("", 200, "", 0)},
		fmEntry{name: "usr/bin/d", linkname: "usr/bin/b"},
	))
	f.Add([]byte{})

	tmp := f.TempDir() // every input must leave it empty; checked below
	f.Fuzz(func(t *testing.T, blob []byte) {
		budget := NewSpoolBudget(64 << 10)
		opts := Options{MaxInMemory: 64, MaxTotalInMemory: 256, MaxFileSize: 1 << 20, MaxEntries: 1000, TempDir: tmp,
			MaxSpool: 16 << 10, ProcessSpool: budget, MaxUncompressed: 256 << 10, MaxFilesPerScanner: 50}
		ss := []scanner.Scanner{everything(), exactly("os", "etc/os-release"), newSniffer()}

		c, err := Read(context.Background(), bytes.NewReader(blob), sha256Digest(blob), ss, opts)
		switch {
		case err == nil && c == nil:
			t.Fatal("nil Contents and nil error")
		case err != nil && c != nil:
			t.Fatalf("Contents with error %v", err)
		case err != nil && !errors.Is(err, ErrBadLayer):
			t.Fatalf("error reading a bytes.Reader that is not ErrBadLayer: %v", err)
		case err != nil && errors.Is(err, ErrDigestMismatch):
			t.Fatalf("digest mismatch with the right digest: %v", err)
		}
		if c != nil {
			checkContents(t, c, int64(len(blob)))
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Fatalf("%d temp files left", len(left))
		}
		if budget.Used() != 0 || budget.Peak() > opts.MaxSpool {
			t.Fatalf("spool budget: %d used after Close, peak %d over the layer's limit of %d", budget.Used(), budget.Peak(), opts.MaxSpool)
		}

		// Any other digest: a mismatch, never Contents.
		wrong := sha256Digest(append(blob, 0))
		c, err = Read(context.Background(), bytes.NewReader(blob), wrong, ss, opts)
		if c != nil {
			c.Close()
			t.Fatal("Contents returned on a digest mismatch")
		}
		if !errors.Is(err, ErrDigestMismatch) || !errors.Is(err, ErrBadLayer) {
			t.Fatalf("wrong digest: err = %v, want ErrDigestMismatch", err)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Fatalf("%d temp files left after a mismatch", len(left))
		}
	})
}

// checkContents checks Contents read from a blob of compressed bytes: its
// count of them, every file opens and reads to its size, and it closes.
func checkContents(t *testing.T, c *Contents, compressed int64) {
	t.Helper()
	if c.CompressedBytes != compressed {
		t.Fatalf("CompressedBytes = %d, want %d", c.CompressedBytes, compressed)
	}
	for _, fs := range c.Files {
		for _, f := range fs {
			rc, err := f.Open()
			if err != nil {
				t.Fatalf("open %s: %v", f.Path(), err)
			}
			var buf bytes.Buffer
			n, err := buf.ReadFrom(rc)
			rc.Close()
			if err != nil || n != f.Size() {
				t.Fatalf("%s: read %d of %d bytes: %v", f.Path(), n, f.Size(), err)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
