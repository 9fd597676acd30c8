package cputime

import (
	"runtime"
	"testing"
)

// TestProcessGrows: the CPU time after some work is not less than before
// it, and on a unix system it is not zero.
func TestProcessGrows(t *testing.T) {
	before := Process()
	x := 0
	for i := range 10_000_000 {
		x += i % 7
	}
	after := Process()
	if after < before {
		t.Errorf("CPU time went back: %v then %v (%d)", before, after, x)
	}
	if runtime.GOOS == "linux" && after == 0 {
		t.Errorf("CPU time 0 on linux")
	}
}
