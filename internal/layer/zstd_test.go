package layer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stevedore-dev/stevedore/scanner"
)

// zstdConcurrencies are the decoder settings the zstd tests run with: the
// synchronous decoder and the one that reads the blob on a goroutine of its
// own.
var zstdConcurrencies = []int{1, 2}

// cancelingReader cancels a context once it has delivered after bytes, as a
// caller giving up mid-stream would; the next read of the source sees it.
type cancelingReader struct {
	r      io.Reader
	n      int
	after  int
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	if c.n >= c.after {
		c.cancel()
	}
	return n, err
}

// chunkReader returns at most size bytes per Read.
type chunkReader struct {
	r    io.Reader
	size int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.size)])
}

// zstdLayers returns the alpine layer compressed as one zstd frame and as
// two frames one after the other (like a multi-threaded compressor's
// output). Both decode to the same tar, of about 45 blocks of 128 KiB, so
// that the concurrent decoder has blocks in flight when an error comes.
func zstdLayers(t *testing.T) (plain []byte, blobs map[string][]byte) {
	plain = alpineLayer(t)
	k := len(plain)/2 + 777 // mid-file: the second frame starts inside a tar entry
	return plain, map[string][]byte{
		"one frame":  zstdBytes(t, plain),
		"two frames": append(zstdBytes(t, plain[:k]), zstdBytes(t, plain[k:])...),
	}
}

func TestZstdConcurrencyDefault(t *testing.T) {
	if got := (Options{}).withDefaults().zstdConcurrency; got != 1 {
		t.Errorf("default zstd concurrency = %d, want 1", got)
	}
}

// Reads that succeed: every source shape gives the same files, and the
// digest and byte count cover the whole blob, trailing bytes included.
func TestReadZstdConcurrentOK(t *testing.T) {
	plain, blobs := zstdLayers(t)
	garbage := make([]byte, 5000)
	rand.NewChaCha8([32]byte{2}).Read(garbage)
	garbage[0] = 'x' // neither a zstd frame nor a skippable one
	osRelease := memberOf(t, plain, "etc/os-release")
	sources := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"bytes", func(r io.Reader) io.Reader { return r }},
		{"half reads", iotest.HalfReader},
		{"1000-byte reads", func(r io.Reader) io.Reader { return &chunkReader{r: r, size: 1000} }},
	}
	for _, conc := range zstdConcurrencies {
		for name, zs := range blobs {
			for _, trailing := range []bool{false, true} {
				blob := zs
				if trailing {
					blob = append(slices.Clone(zs), garbage...)
				}
				for _, src := range sources {
					t.Run(fmt.Sprintf("concurrency %d/%s/trailing %v/%s", conc, name, trailing, src.name), func(t *testing.T) {
						ss := []scanner.Scanner{exactly("os", "etc/os-release")}
						c, err := Read(context.Background(), src.wrap(bytes.NewReader(blob)), sha256Digest(blob), ss, Options{zstdConcurrency: conc})
						if err != nil {
							t.Fatal(err)
						}
						defer c.Close()
						if c.CompressedBytes != int64(len(blob)) || c.UncompressedBytes != int64(len(plain)) {
							t.Errorf("bytes = %d, %d; want %d, %d", c.CompressedBytes, c.UncompressedBytes, len(blob), len(plain))
						}
						if len(c.Files[0]) != 1 || !bytes.Equal(readAll(t, c.Files[0][0]), osRelease) {
							t.Errorf("etc/os-release not read back: %v", viewFiles(t, c.Files[0]))
						}
						warned := slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, "zstd: after the end of the tar") })
						if warned != trailing {
							t.Errorf("warnings %q; want one about trailing data: %v", c.Warnings, trailing)
						}
					})
				}
				if !trailing {
					continue
				}
				// The trailing bytes are hashed: the digest of the frames
				// alone does not match.
				t.Run(fmt.Sprintf("concurrency %d/%s/trailing, digest of the frames", conc, name), func(t *testing.T) {
					c, err := Read(context.Background(), bytes.NewReader(blob), sha256Digest(zs), nil, Options{zstdConcurrency: conc})
					if c != nil || !errors.Is(err, ErrDigestMismatch) {
						t.Fatalf("err = %v, want ErrDigestMismatch", err)
					}
				})
			}
		}
	}
}

// The source fails at points all over the blob, while the decoder's own
// goroutine reads it: a read error, never a bad layer.
func TestReadZstdConcurrentSourceError(t *testing.T) {
	_, blobs := zstdLayers(t)
	garbage := bytes.Repeat([]byte("trailing"), 500)
	for _, conc := range zstdConcurrencies {
		for name, zs := range blobs {
			for _, trailing := range []bool{false, true} {
				blob := zs
				if trailing {
					blob = append(slices.Clone(zs), garbage...)
				}
				cuts := []int{0, 3, 9, 100, len(zs) - 3, len(zs), len(blob)}
				for i := 1; i < 8; i++ {
					cuts = append(cuts, len(zs)*i/8)
				}
				for _, cut := range cuts {
					t.Run(fmt.Sprintf("concurrency %d/%s/trailing %v/at %d", conc, name, trailing, cut), func(t *testing.T) {
						r := &failingReader{r: bytes.NewReader(blob[:cut]), err: errNetwork}
						c, err := Read(context.Background(), r, sha256Digest(blob), []scanner.Scanner{everything()}, Options{zstdConcurrency: conc})
						if c != nil {
							c.Close()
							t.Fatal("Contents returned with an error")
						}
						if !errors.Is(err, ErrRead) || !errors.Is(err, errNetwork) || errors.Is(err, ErrBadLayer) {
							t.Fatalf("err = %v, want ErrRead wrapping the reader's error and not ErrBadLayer", err)
						}
					})
				}
			}
		}
	}
}

// The context ends while the decoder reads ahead: from the source's side
// (the next read of the blob sees it) and from the tar walk's.
func TestReadZstdConcurrentCanceled(t *testing.T) {
	_, blobs := zstdLayers(t)
	for _, conc := range zstdConcurrencies {
		for name, zs := range blobs {
			for _, at := range []int{1, len(zs) / 3, len(zs) - 1, len(zs)} {
				t.Run(fmt.Sprintf("concurrency %d/%s/source at %d", conc, name, at), func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					r := &cancelingReader{r: &chunkReader{r: bytes.NewReader(zs), size: 4096}, after: at, cancel: cancel}
					c, err := Read(ctx, r, sha256Digest(zs), []scanner.Scanner{everything()}, Options{zstdConcurrency: conc})
					checkCanceled(t, c, err)
				})
			}
			t.Run(fmt.Sprintf("concurrency %d/%s/walk", conc, name), func(t *testing.T) {
				readCanceledInWalk(t, zs, true, Options{zstdConcurrency: conc})
			})
		}
	}
}

// Content failures mid-stream: Read stops the decoder, reads the rest of the
// blob itself and checks the digest, which matches only if every byte was
// hashed once, in order.
func TestReadZstdConcurrentBadLayer(t *testing.T) {
	_, blobs := zstdLayers(t)
	for _, conc := range zstdConcurrencies {
		for name, zs := range blobs {
			flipped := slices.Clone(zs)
			flipped[len(zs)/2] ^= 0x40
			badSum := slices.Clone(zs)
			badSum[len(zs)-1] ^= 0x01 // the checksum of the frame the tar ends in
			after := zstdBytes(t, []byte("a frame after the tar"))
			after[len(after)-1] ^= 0x01
			after = append(slices.Clone(zs), after...)
			tests := []struct {
				name string
				blob []byte
				opts Options
				msg  string
				is   error
			}{
				{name: "too many entries", blob: zs, opts: Options{MaxEntries: 10}, msg: "more than the limit of 10 tar entries"},
				{name: "too many decompressed bytes", blob: zs, opts: Options{MaxUncompressed: 1 << 20}, msg: "decompressed bytes", is: ErrLimit},
				{name: "byte flipped", blob: flipped, msg: "zstd: "},
				{name: "truncated", blob: zs[:len(zs)/2], msg: "zstd: "},
				{name: "checksum flipped", blob: badSum, msg: "zstd: "},
				{name: "bad frame after the tar", blob: after, msg: "zstd: "},
				{name: "frame header only", blob: zs[:9], msg: "zstd: "},
			}
			for _, tt := range tests {
				t.Run(fmt.Sprintf("concurrency %d/%s/%s", conc, name, tt.name), func(t *testing.T) {
					tt.opts.zstdConcurrency = conc
					for _, want := range []struct {
						blob     []byte
						mismatch bool
					}{{tt.blob, false}, {append(slices.Clone(tt.blob), 0), true}} {
						c, err := Read(context.Background(), bytes.NewReader(tt.blob), sha256Digest(want.blob), []scanner.Scanner{everything()}, tt.opts)
						if c != nil {
							c.Close()
							t.Fatal("Contents returned with an error")
						}
						if !errors.Is(err, ErrBadLayer) || errors.Is(err, ErrRead) || errors.Is(err, ErrDigestMismatch) != want.mismatch {
							t.Fatalf("err = %v, want ErrBadLayer (digest mismatch: %v)", err, want.mismatch)
						}
						if !strings.Contains(err.Error(), tt.msg) || (tt.is != nil && !errors.Is(err, tt.is)) {
							t.Errorf("err = %v, want it to say %q (and wrap %v)", err, tt.msg, tt.is)
						}
					}
				})
			}
		}
	}
}
