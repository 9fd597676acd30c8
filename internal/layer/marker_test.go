package layer

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestNewMarkerAnchor(t *testing.T) {
	tests := []struct {
		marker string
		anchor int
	}{
		{"\xff Go buildinf:", 2}, // 'G': "\xff" and " " are common
		{".dep-v0", 0},
		{"x", 0},
		{"\x00\xff", 1},      // both common: the less common
		{"\xff\x00\xffH", 3}, // "H" is the least common of the three
		{"HHHz", 3},
		{"", 0},
	}
	for _, tt := range tests {
		if got := newMarker([]byte(tt.marker)).anchor; got != tt.anchor {
			t.Errorf("newMarker(%q).anchor = %d, want %d", tt.marker, got, tt.anchor)
		}
	}
}

// marker.in says what bytes.Contains says, wherever the marker and the
// other occurrences of its anchor are.
func TestMarkerIn(t *testing.T) {
	markers := []string{"\xff Go buildinf:", ".dep-v0", "x", "ab", "aab", "\x00\xff", ""}
	for _, mk := range markers {
		m := newMarker([]byte(mk))
		tests := []string{"", mk, "a" + mk, mk + "a", mk[:len(mk)/2], "\xff\xff Go buildinf", "Go buildinf:", ".dep-v", "dep-v0", "aaaab"}
		for _, s := range tests {
			if got, want := m.in([]byte(s)), bytes.Contains([]byte(s), []byte(mk)); got != want {
				t.Errorf("marker %q in %q = %v, want %v", mk, s, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 20000; iter++ {
		mk := []byte(markers[rng.IntN(len(markers))])
		// Data made of the marker's bytes and a few others, so that its
		// anchor and partial matches are frequent.
		alphabet := string(mk) + "\x00\xffa"
		s := make([]byte, rng.IntN(100))
		for i := range s {
			s[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if rng.IntN(4) == 0 && len(s) >= len(mk) {
			copy(s[rng.IntN(len(s)-len(mk)+1):], mk)
		}
		if got, want := newMarker(mk).in(s), bytes.Contains(s, mk); got != want {
			t.Fatalf("marker %q in %q = %v, want %v", mk, s, got, want)
		}
	}
}
