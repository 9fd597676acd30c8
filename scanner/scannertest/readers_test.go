package scannertest

import (
	"io"
	"testing"
)

func TestCountingRepeat(t *testing.T) {
	cr := &CountingReader{R: io.LimitReader(Repeat([]byte("abc")), 7)}
	got, err := io.ReadAll(cr)
	if err != nil || string(got) != "abcabca" || cr.N != 7 {
		t.Errorf("read %q, %v, counted %d; want abcabca, nil, 7", got, err, cr.N)
	}
}

func TestReadFixture(t *testing.T) {
	if b := ReadFixture(t, "apk/trivy_apk"); len(b) == 0 {
		t.Error("empty fixture apk/trivy_apk")
	}
}
