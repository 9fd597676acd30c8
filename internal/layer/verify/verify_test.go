package verify_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stevedore-dev/stevedore/internal/layer/verify"
	"github.com/stevedore-dev/stevedore/report"
)

func sha256Of(b []byte) report.Digest {
	s := sha256.Sum256(b)
	return report.Digest("sha256:" + hex.EncodeToString(s[:]))
}

func sha512Of(b []byte) report.Digest {
	s := sha512.Sum512(b)
	return report.Digest("sha512:" + hex.EncodeToString(s[:]))
}

func TestVerify(t *testing.T) {
	blob := bytes.Repeat([]byte("stevedore layer bytes "), 10000)
	other := append(bytes.Clone(blob[:len(blob)-1]), '!')
	tests := []struct {
		name    string
		want    report.Digest
		data    []byte
		wantErr error
	}{
		{"sha256 matches", sha256Of(blob), blob, nil},
		{"sha512 matches", sha512Of(blob), blob, nil},
		{"empty blob", sha256Of(nil), nil, nil},
		{"one byte changed", sha256Of(blob), other, verify.ErrMismatch},
		{"truncated", sha512Of(blob), blob[:100], verify.ErrMismatch},
		{"unknown algorithm", report.Digest("md5:" + strings.Repeat("0", 32)), blob, verify.ErrAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := verify.Bytes(tt.want, tt.data); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Bytes: %v, want %v", err, tt.wantErr)
			}
			r, err := verify.NewReader(iotest.HalfReader(bytes.NewReader(tt.data)), tt.want)
			if errors.Is(tt.wantErr, verify.ErrAlgorithm) {
				if !errors.Is(err, verify.ErrAlgorithm) {
					t.Fatalf("NewReader: %v, want ErrAlgorithm", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if !bytes.Equal(got, tt.data) {
				t.Errorf("read %d bytes, want %d", len(got), len(tt.data))
			}
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadAll: %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "expected "+string(tt.want)+", got "+string(r.Sum())) {
				t.Errorf("error %q does not name both digests", err)
			}
			if n, err2 := r.Read(make([]byte, 1)); n != 0 || (err == nil && err2 != io.EOF) || (err != nil && err2 != err) {
				t.Errorf("Read after the end: %d, %v", n, err2)
			}
			if r.VerifiedDigest() != tt.want || r.Size() != int64(len(tt.data)) {
				t.Errorf("VerifiedDigest %s, Size %d", r.VerifiedDigest(), r.Size())
			}
		})
	}
}

// A reader's own error is passed on as it is, not taken for a mismatch.
func TestReaderPassesErrors(t *testing.T) {
	boom := errors.New("connection reset")
	r, err := verify.NewReader(iotest.ErrReader(boom), sha256Of(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err != boom {
		t.Fatalf("got %v, want the reader's error", err)
	}
}
