package gobinary

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// execOnly is version 1's file selection (an executable bit required), to
// compare the cost of reading every file's head with it in one run.
type execOnly struct{ Scanner }

func (e execOnly) MatchFile(path string, mode fs.FileMode, size int64) bool {
	return mode.Perm()&0o111 != 0 && e.Scanner.MatchFile(path, mode, size)
}

// libLayer is an uncompressed layer of this machine's shared libraries
// (/usr/lib/x86_64-linux-gnu, regular files, 0644 as libraries are
// installed), about 150 MiB: a layer of C libraries, none of them Go.
var libLayer = sync.OnceValues(func() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir("/usr/lib/x86_64-linux-gnu", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || buf.Len() > 150<<20 {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if err := tw.WriteHeader(&tar.Header{Name: p[1:], Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), tw.Close()
})

// BenchmarkMatchLibraries reads a layer of C shared libraries through the
// layer reader with the scanner's file selection of version 2 (every
// file's head) and of version 1 (executables only): the difference is what
// looking at libraries costs. Compare the two in one run.
func BenchmarkMatchLibraries(b *testing.B) {
	blob, err := libLayer()
	if err != nil {
		b.Fatal(err)
	}
	d := scannertest.Digest(blob)
	for name, s := range map[string]scanner.Scanner{"v2-any-mode": Scanner{}, "v1-exec-only": execOnly{}} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(blob)))
			for b.Loop() {
				c, err := layer.Read(context.Background(), bytes.NewReader(blob), d, []scanner.Scanner{s}, layer.Options{TempDir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				if len(c.Files[0]) != 0 {
					b.Fatalf("kept %d files", len(c.Files[0]))
				}
				c.Close()
			}
		})
	}
}
