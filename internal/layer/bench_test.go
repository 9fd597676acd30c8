package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

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
