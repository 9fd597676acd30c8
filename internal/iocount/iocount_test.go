package iocount

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		r       io.Reader
		want    int64
		wantErr bool
	}{
		{name: "all", r: strings.NewReader("abcdefg"), want: 7},
		{name: "empty", r: strings.NewReader(""), want: 0},
		{name: "error after some", r: io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(errors.New("broken"))), want: 3, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := &Reader{R: iotest.OneByteReader(tc.r)}
			b, err := io.ReadAll(cr)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ReadAll: err %v, want an error %v", err, tc.wantErr)
			}
			if cr.N != tc.want || int64(len(b)) != tc.want {
				t.Errorf("N %d, read %d bytes; want %d", cr.N, len(b), tc.want)
			}
		})
	}
}

// shortWriter writes at most max bytes of each call and then fails.
type shortWriter struct{ max int }

func (s shortWriter) Write(p []byte) (int, error) {
	if len(p) > s.max {
		return s.max, io.ErrShortWrite
	}
	return len(p), nil
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name    string
		w       io.Writer
		writes  []string
		want    int64
		wantErr bool
	}{
		{name: "buffer", w: &bytes.Buffer{}, writes: []string{"ab", "", "cde"}, want: 5},
		{name: "short", w: shortWriter{max: 2}, writes: []string{"ab", "cde"}, want: 4, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cw := &Writer{W: tc.w}
			var err error
			for _, s := range tc.writes {
				if _, werr := io.WriteString(cw, s); werr != nil {
					err = werr
				}
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("writes: err %v, want an error %v", err, tc.wantErr)
			}
			if cw.N != tc.want {
				t.Errorf("N %d, want %d", cw.N, tc.want)
			}
		})
	}
}
