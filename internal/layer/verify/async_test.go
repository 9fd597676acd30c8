package verify

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

func TestAsync(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 5*asyncChunk+123)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(data)
	tests := []struct {
		name   string
		writes []int // sizes of the successive writes
	}{
		{"nothing", nil},
		{"one byte", []int{1}},
		{"one chunk exactly", []int{asyncChunk}},
		{"one large write", []int{len(data)}},
		{"small writes", []int{7, 4096, 65536, 1, asyncChunk - 1, 2 * asyncChunk, 333}},
		{"more chunks than buffers", []int{asyncChunk, asyncChunk, asyncChunk, asyncChunk, asyncChunk, 123}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sha256.New()
			a := NewAsync(h)
			defer a.Close()
			off := 0
			for _, n := range tt.writes {
				if w, err := a.Write(data[off : off+n]); w != n || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", n, w, err)
				}
				off += n
			}
			wantHere := sha256.Sum256(data[:off])
			if off == len(data) && wantHere != want {
				t.Fatal("test data")
			}
			a.Flush()
			if got := h.Sum(nil); !bytes.Equal(got, wantHere[:]) {
				t.Errorf("Sum = %x, want %x", got, wantHere)
			}
			// Flush again, and Close after Flush, change nothing.
			a.Flush()
			if got := h.Sum(nil); !bytes.Equal(got, wantHere[:]) {
				t.Errorf("second Sum = %x, want %x", got, wantHere)
			}
			a.Close()
		})
	}
	// Closed without a Flush (a read that failed): the goroutine ends.
	a := NewAsync(sha256.New())
	a.Write(data)
	a.Close()
	a.Close()
}
