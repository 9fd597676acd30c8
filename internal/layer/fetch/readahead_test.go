package fetch

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/stevedore-dev/stevedore/internal/layer/verify"
	"github.com/stevedore-dev/stevedore/report"
)

// failing returns its bytes, then err, with the last bytes when withLast.
type failing struct {
	r        io.Reader
	err      error
	withLast bool
}

func (f *failing) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF || f.withLast && n > 0 && f.r.(*bytes.Reader).Len() == 0 {
		return n, f.err
	}
	return n, err
}

// verified is a body that checks its bytes against a digest.
type verified struct{ io.ReadCloser }

func (verified) VerifiedDigest() report.Digest {
	return "sha256:" + report.Digest(bytes.Repeat([]byte("a"), 64))
}

// TestReadahead: the reader sees the body's bytes and error, whatever the
// sizes of the body's reads and of its own.
func TestReadahead(t *testing.T) {
	data := make([]byte, 3*readaheadChunk+12345)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	boom := errors.New("connection reset")
	tests := []struct {
		name string
		body func() io.Reader
		err  error
	}{
		{"EOF after the bytes", func() io.Reader { return bytes.NewReader(data) }, nil},
		{"EOF with the last bytes", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) }, nil},
		{"a byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) }, nil},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }, nil},
		{"an error after the bytes", func() io.Reader { return &failing{r: bytes.NewReader(data), err: boom} }, boom},
		{"an error with the last bytes", func() io.Reader { return &failing{r: bytes.NewReader(data), err: boom, withLast: true} }, boom},
		{"a digest mismatch at the end", func() io.Reader { return &failing{r: bytes.NewReader(data), err: verify.ErrMismatch} }, verify.ErrMismatch},
		{"empty", func() io.Reader { return bytes.NewReader(nil) }, nil},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 4096, 64 << 10, 1 << 20} {
			ra := newReadahead(io.NopCloser(tt.body()))
			var got []byte
			buf := make([]byte, size)
			var err error
			for {
				var n int
				n, err = ra.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			want := data
			if tt.name == "empty" {
				want = nil
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s, reads of %d: %d bytes, want the body's %d", tt.name, size, len(got), len(want))
			}
			if tt.err == nil && err != io.EOF || tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("%s, reads of %d: error %v, want %v", tt.name, size, err, tt.err)
			}
			if _, again := ra.Read(buf); again != err {
				t.Errorf("%s: read after the end: %v, want %v again", tt.name, again, err)
			}
			if err := ra.Close(); err != nil {
				t.Errorf("%s: Close: %v", tt.name, err)
			}
		}
	}
}

// TestReadaheadClose: Close stops the goroutine whatever it was doing,
// closes the body, and later reads fail.
func TestReadaheadClose(t *testing.T) {
	data := make([]byte, (readaheadBuffers+2)*readaheadChunk)
	for _, read := range []int{0, 1, readaheadChunk, len(data)} {
		closed := false
		body := &closeRecorder{Reader: bytes.NewReader(data), closed: &closed}
		ra := newReadahead(body)
		if _, err := io.ReadFull(ra, make([]byte, read)); err != nil {
			t.Fatal(err)
		}
		if err := ra.Close(); err != nil {
			t.Fatalf("Close after %d bytes: %v", read, err)
		}
		if !closed {
			t.Errorf("Close after %d bytes: the body is not closed", read)
		}
		if _, err := ra.Read(make([]byte, 10)); err == nil {
			t.Errorf("Read after Close: no error")
		}
	}
	if got := newReadahead(verified{io.NopCloser(bytes.NewReader(nil))}).(verify.Verified).VerifiedDigest(); got == "" {
		t.Error("the body's VerifiedDigest is not passed on")
	}
}

type closeRecorder struct {
	io.Reader
	closed *bool
}

func (c *closeRecorder) Close() error { *c.closed = true; return nil }
