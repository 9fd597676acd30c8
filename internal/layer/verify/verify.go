// Package verify checks bytes against a digest. It is the one place where
// Stevedore hashes a blob and compares the hash with the blob's digest: a
// layer as internal/layer reads it, a blob read from or written to the
// local blob cache (internal/layer/blobcache), a manifest a webhook event
// carries. Manifests fetched from registries are checked by
// go-containerregistry itself (its internal/verify, after which this
// package is shaped).
package verify

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/stevedore-dev/stevedore/report"
)

// ErrMismatch is wrapped by the error of bytes that do not hash to the
// digest they were expected to have.
var ErrMismatch = errors.New("digest mismatch")

// ErrAlgorithm is wrapped by the error of a digest whose algorithm is not
// sha256 or sha512.
var ErrAlgorithm = errors.New("unsupported digest algorithm")

// Hash returns a new hash of d's algorithm (sha256 or sha512).
func Hash(d report.Digest) (hash.Hash, error) {
	switch d.Algorithm() {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("digest %q: %w: want sha256 or sha512", d, ErrAlgorithm)
}

// Digester hashes the bytes written to it and checks them against the
// digest they should have. Its Write never fails.
type Digester struct {
	want report.Digest
	h    hash.Hash
	n    int64
}

// New returns a Digester for bytes whose digest should be want.
func New(want report.Digest) (*Digester, error) {
	h, err := Hash(want)
	if err != nil {
		return nil, err
	}
	return &Digester{want: want, h: h}, nil
}

// Write implements io.Writer.
func (d *Digester) Write(p []byte) (int, error) {
	d.h.Write(p)
	d.n += int64(len(p))
	return len(p), nil
}

// Want is the digest the bytes should have.
func (d *Digester) Want() report.Digest { return d.want }

// Size is the number of bytes written.
func (d *Digester) Size() int64 { return d.n }

// Sum is the digest of the bytes written so far, in want's algorithm.
func (d *Digester) Sum() report.Digest {
	return report.Digest(d.want.Algorithm() + ":" + hex.EncodeToString(d.h.Sum(nil)))
}

// Verify returns nil when the bytes written hash to the digest wanted, and
// otherwise an error wrapping ErrMismatch that gives both digests and the
// number of bytes: "digest mismatch: expected sha256:…, got sha256:… (N
// bytes)".
func (d *Digester) Verify() error {
	if got := d.Sum(); got != d.want {
		return fmt.Errorf("%w: expected %s, got %s (%d bytes)", ErrMismatch, d.want, got, d.n)
	}
	return nil
}

// Bytes checks that b hashes to want.
func Bytes(want report.Digest, b []byte) error {
	d, err := New(want)
	if err != nil {
		return err
	}
	d.Write(b)
	return d.Verify()
}

// Verified is implemented by a reader that checks the bytes it delivers
// against a digest itself (Reader, the blob cache's reader): when they do
// not match, its last Read fails instead of returning io.EOF. A consumer
// that would hash the bytes for the same digest need not hash them again
// (internal/layer's "hashed once").
type Verified interface {
	// VerifiedDigest is the digest the reader checks its bytes against.
	VerifiedDigest() report.Digest
}

// Reader reads a blob and checks its digest at the end: its last Read
// returns io.EOF when the bytes matched, and the error of Digester.Verify
// (wrapping ErrMismatch) instead when they did not. Every later Read
// returns the same. Other errors of the underlying reader are passed on
// as they are. It is Verified.
type Reader struct {
	r   io.Reader
	d   *Digester
	err error
}

// NewReader returns a Reader of r, whose bytes should hash to want.
func NewReader(r io.Reader, want report.Digest) (*Reader, error) {
	d, err := New(want)
	if err != nil {
		return nil, err
	}
	return &Reader{r: r, d: d}, nil
}

// Read implements io.Reader.
func (v *Reader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.d.Write(p[:n])
	if err == io.EOF {
		if verr := v.d.Verify(); verr != nil {
			err = verr
		}
		v.err = err
	}
	return n, err
}

// VerifiedDigest implements Verified.
func (v *Reader) VerifiedDigest() report.Digest { return v.d.want }

// Size is the number of bytes read so far.
func (v *Reader) Size() int64 { return v.d.n }

// Sum is the digest of the bytes read so far.
func (v *Reader) Sum() report.Digest { return v.d.Sum() }
