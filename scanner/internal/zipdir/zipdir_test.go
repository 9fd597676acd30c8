package zipdir

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestCheck(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 100 {
		if _, err := zw.Create(fmt.Sprintf("f%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b := bytes.NewReader(buf.Bytes())
	for _, tc := range []struct {
		entries int
		bytes   int64
		ok      bool
	}{
		{1000, 1 << 20, true},
		{100, 1 << 20, true},
		{99, 1 << 20, false},
		{1000, 1000, false},
	} {
		err := Check(b, b.Size(), tc.entries, tc.bytes)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrTooManyEntries)) {
			t.Errorf("Check(%d entries, %d bytes) = %v", tc.entries, tc.bytes, err)
		}
	}
	// Not a zip: let through (archive/zip refuses it).
	if err := Check(bytes.NewReader([]byte("not a zip")), 9, 1, 1); err != nil {
		t.Errorf("not a zip: %v", err)
	}
}
