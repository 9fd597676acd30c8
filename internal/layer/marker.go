package layer

import "bytes"

// commonBytes are the 32 most frequent bytes in executables (the ELF
// files of /usr/bin of a Debian system, x86-64), the most frequent first.
// A marker is looked for by its least frequent byte (see newMarker).
const commonBytes = "\x00\xffH\x89\x0f \x01\x8b$\xe8\x0eA\x08tLD\x8d\x83\x85\xc0e\x02\x10\x84f1\x04I\x1fs\x05\x03"

// marker is a byte string a scanner wants a file to contain
// (scanner.FileMatcher's MatchHead), with the index of the byte that in looks
// for first.
type marker struct {
	b      []byte
	anchor int
}

// newMarker returns the marker b, anchored at its first byte that is not
// one of commonBytes (at its least common byte when all are).
func newMarker(b []byte) marker {
	m := marker{b: b}
	rank := -1 // the anchor's place in commonBytes; len(commonBytes) when not there
	for i, c := range b {
		r := len(commonBytes)
		if k := bytes.IndexByte([]byte(commonBytes), c); k >= 0 {
			r = k
		}
		if r > rank {
			m.anchor, rank = i, r
			if r == len(commonBytes) {
				break
			}
		}
	}
	return m
}

// in reports whether s contains the marker: bytes.Contains(s, m.b). It
// looks for the anchor byte with bytes.IndexByte and compares the marker
// around each occurrence: ten times as fast as bytes.Contains for markers
// starting with a frequent byte ("\xff Go buildinf:") in machine code,
// where bytes.Contains keeps stopping at the first byte.
func (m marker) in(s []byte) bool {
	n := len(m.b)
	if n == 0 {
		return true
	}
	c, k := m.b[m.anchor], m.anchor
	for i := k; i+n-k <= len(s); i++ {
		j := bytes.IndexByte(s[i:len(s)-(n-k-1)], c)
		if j < 0 {
			return false
		}
		i += j
		if bytes.Equal(s[i-k:i-k+n], m.b) {
			return true
		}
	}
	return false
}
