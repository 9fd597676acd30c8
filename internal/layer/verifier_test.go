package layer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/layer/verify"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// verifyingReader stands for the blob cache's reader: a Verifier of d
// whose last Read fails with err instead of io.EOF when err is set.
type verifyingReader struct {
	r   io.Reader
	d   report.Digest
	err error
}

func (v *verifyingReader) VerifiedDigest() report.Digest { return v.d }

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	if err == io.EOF && v.err != nil {
		return n, v.err
	}
	return n, err
}

// Read trusts a Verifier of the digest it was given (it does not hash its
// bytes again), reports the Verifier's failure as a read error (as a
// digest mismatch when it is one), and hashes
// the bytes of a Verifier of another digest as any reader's. (The alpine
// layer: trivy's alpine-310.tar.gz, Apache-2.0.)
func TestReadVerifier(t *testing.T) {
	gz := gzipBytes(t, alpineLayer(t))
	right := sha256Digest(gz)
	other := sha256Digest([]byte("another blob"))
	errCorrupt := errors.New("cached copy unreadable")
	errMismatch := fmt.Errorf("cached copy does not match: %w", verify.ErrMismatch)
	tests := []struct {
		name    string
		src     *verifyingReader
		want    report.Digest
		wantErr error // nil: success
	}{
		// The reader vouches for "other" and Read was asked for "other":
		// Read takes its word, so the bytes of another blob pass. (This
		// is how the test sees that Read did not hash them.)
		{"trusted for the digest asked for", &verifyingReader{r: bytes.NewReader(gz), d: other}, other, nil},
		{"its failure is a read error", &verifyingReader{r: bytes.NewReader(gz), d: right, err: errCorrupt}, right, ErrRead},
		{"its mismatch is a bad layer", &verifyingReader{r: bytes.NewReader(gz), d: right, err: errMismatch}, right, ErrBadLayer},
		// A Verifier of another digest than the one asked for is
		// hashed: the mismatch is caught.
		{"a Verifier of another digest is hashed", &verifyingReader{r: bytes.NewReader(gz), d: right}, other, ErrDigestMismatch},
		{"a Verifier of the right digest, right bytes", &verifyingReader{r: bytes.NewReader(gz), d: right}, right, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Read(context.Background(), tt.src, tt.want, []scanner.Scanner{exactly("os", "etc/os-release")}, Options{})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if len(c.Files[0]) != 1 {
					t.Errorf("%d files for the scanner, want etc/os-release", len(c.Files[0]))
				}
				return
			}
			if c != nil || !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.src.err != nil && !errors.Is(err, tt.src.err) {
				t.Errorf("err = %v does not wrap the reader's %v", err, tt.src.err)
			}
		})
	}
}
