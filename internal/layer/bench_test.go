package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/stevedore-dev/stevedore/scanner"
)

// benchLayer is a synthetic layer of about 200 MiB uncompressed: 1,200 files
// of 4 KiB to 340 KiB of word-like text with random bytes mixed in (about
// 3:1 under gzip, like a typical distro layer), plus one etc/os-release.
type benchLayer struct {
	tar, gzip, zstd []byte
}

// benchLayerOnce builds the layer once per test binary: benchmarks are called
// several times while the framework picks b.N.
var benchLayerOnce = sync.OnceValue(func() benchLayer {
	rng := rand.New(rand.NewPCG(7, 11))
	words := make([][]byte, 512)
	for i := range words {
		w := make([]byte, 3+rng.IntN(10))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		words[i] = append(w, ' ')
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := make([]byte, 0, 400<<10)
	for i := 0; buf.Len() < 200<<20; i++ {
		size := 4<<10 + rng.IntN(336<<10)
		body = body[:0]
		for len(body) < size {
			if rng.IntN(8) == 0 {
				for k := 0; k < 16; k++ {
					body = append(body, byte(rng.Uint32()))
				}
			} else {
				body = append(body, words[rng.IntN(len(words))]...)
			}
		}
		body = body[:size]
		name := fmt.Sprintf("usr/lib/pkg%03d/file%05d.so", i%97, i)
		if i == 600 {
			name = "etc/os-release"
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			panic(err)
		}
		if _, err := tw.Write(body); err != nil {
			panic(err)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	l := benchLayer{tar: buf.Bytes()}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(l.tar)
	zw.Close()
	l.gzip = gz.Bytes()
	enc, _ := zstd.NewWriter(nil)
	l.zstd = enc.EncodeAll(l.tar, nil)
	enc.Close()
	return l
})

func benchBlobs(b *testing.B) (benchLayer, []struct {
	name string
	blob []byte
}) {
	l := benchLayerOnce()
	return l, []struct {
		name string
		blob []byte
	}{{"gzip", l.gzip}, {"zstd", l.zstd}}
}

// BenchmarkRead is the full pass: hash, decompress, walk the tar, Match every
// file, keep the one matched file, drain, verify. Compare with
// BenchmarkDecompressOnly for the overhead.
func BenchmarkRead(b *testing.B) {
	l, blobs := benchBlobs(b)
	for _, bb := range blobs {
		b.Run(bb.name, func(b *testing.B) {
			want := sha256Digest(bb.blob)
			ss := []scanner.Scanner{exactly("os", "etc/os-release")}
			b.SetBytes(int64(len(l.tar)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				c, err := Read(context.Background(), bytes.NewReader(bb.blob), want, ss, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if len(c.Files[0]) != 1 {
					b.Fatal("os-release not found")
				}
				c.Close()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(len(l.tar))/float64(len(bb.blob)), "ratio")
		})
	}
}

// BenchmarkDecompressOnly is the floor: decompress and walk the tar headers,
// nothing else. The blob is read through a plain io.Reader, as a network or
// file stream would be: klauspost's inflater has a faster path for a
// *bytes.Reader, which no streaming source can use.
func BenchmarkDecompressOnly(b *testing.B) {
	l, blobs := benchBlobs(b)
	for _, bb := range blobs {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(l.tar)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				var r io.Reader
				closeDec := func() {}
				if bb.name == "gzip" {
					zr, err := gzip.NewReader(struct{ io.Reader }{bytes.NewReader(bb.blob)})
					if err != nil {
						b.Fatal(err)
					}
					r = zr
				} else {
					zr, err := zstd.NewReader(struct{ io.Reader }{bytes.NewReader(bb.blob)}, zstd.WithDecoderConcurrency(1))
					if err != nil {
						b.Fatal(err)
					}
					closeDec = zr.Close
					r = zr
				}
				tr := tar.NewReader(r)
				for {
					_, err := tr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				closeDec()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// realLayerSize is the size of the tar BenchmarkReadZstdConcurrency builds.
const realLayerSize = 256 << 20

// realLayer is a zstd blob and the size of the tar it holds.
type realLayer struct {
	tarSize int
	blob    []byte
}

// realZstdLayer is a tar of real files of this machine (regular files under
// /usr/lib, then /usr/share, in lexical order, up to realLayerSize),
// compressed with klauspost's zstd at its default level (level 3, as
// container tools write zstd layers).
var realZstdLayer = sync.OnceValues(func() (realLayer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, root := range []string{"/usr/lib", "/usr/share"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() || buf.Len() >= realLayerSize {
				return nil // unreadable or not a file: skipped
			}
			body, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(p, "/"), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
				return err
			}
			_, err = tw.Write(body)
			return err
		})
		if err != nil {
			return realLayer{}, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "etc/os-release", Typeflag: tar.TypeReg, Mode: 0o644, Size: 8}); err != nil {
		return realLayer{}, err
	}
	tw.Write([]byte("ID=test\n"))
	if err := tw.Close(); err != nil {
		return realLayer{}, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return realLayer{}, err
	}
	defer enc.Close()
	return realLayer{tarSize: buf.Len(), blob: enc.EncodeAll(buf.Bytes(), nil)}, nil
})

// BenchmarkReadZstdConcurrency is Read of a zstd layer of real files with
// the decoder's concurrency at 1 and 2 (the default with GOMAXPROCS > 1).
// It reports the wall time (ns/op), the CPU time of the process
// (cpu-ns/op) and the peak of the heap's live and unswept objects over the
// run, less what it held before (peak-heap-MiB: a rough upper bound of the
// memory a Read adds, garbage included).
func BenchmarkReadZstdConcurrency(b *testing.B) {
	l, err := realZstdLayer()
	if err != nil {
		b.Fatal(err)
	}
	tarSize, blob := l.tarSize, l.blob
	want := sha256Digest(blob)
	for _, conc := range []int{1, 2} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			ss := []scanner.Scanner{exactly("os", "etc/os-release")}
			b.SetBytes(int64(tarSize))
			b.ReportAllocs()
			runtime.GC()
			peak := newHeapPeak()
			cpu0 := cpuTime()
			for b.Loop() {
				// A plain io.Reader, as a network or file stream is.
				c, err := Read(context.Background(), struct{ io.Reader }{bytes.NewReader(blob)}, want, ss, Options{zstdConcurrency: conc})
				if err != nil {
					b.Fatal(err)
				}
				if len(c.Files[0]) != 1 {
					b.Fatal("etc/os-release not found")
				}
				c.Close()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(peak.stop())/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(tarSize)/float64(len(blob)), "ratio")
		})
	}
}

// heapPeak samples the bytes of heap objects every millisecond.
type heapPeak struct {
	base, peak uint64
	done       chan struct{}
	stopped    chan struct{}
}

func newHeapPeak() *heapPeak {
	h := &heapPeak{done: make(chan struct{}), stopped: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	h.base = s[0].Value.Uint64()
	go func() {
		defer close(h.stopped)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-t.C:
				metrics.Read(s)
				h.peak = max(h.peak, s[0].Value.Uint64())
			}
		}
	}()
	return h
}

// stop returns the peak over the base.
func (h *heapPeak) stop() uint64 {
	close(h.done)
	<-h.stopped
	if h.peak < h.base {
		return 0
	}
	return h.peak - h.base
}
