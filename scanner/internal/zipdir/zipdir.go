// Package zipdir bounds what archive/zip allocates for an archive before it
// is opened: a hostile archive's central directory can list millions of
// entries, and archive/zip keeps every one in memory.
//
// It is shared by the java scanner (jar, war, ear archives) and the python
// scanner (zipped eggs).
package zipdir

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrTooManyEntries is wrapped by Check's error for a central directory
// over the limits.
var ErrTooManyEntries = errors.New("central directory over the limit")

// Fixed sizes of the zip format's records, for callers that charge or
// build central directories.
const (
	// RecordLen is the size of one central-directory record, before its
	// name, extra field and comment.
	RecordLen = dirHeaderLen
	// EndLen is the size of the end-of-central-directory record, before its
	// comment.
	EndLen = eocdLen
)

const (
	eocdLen       = 22
	eocdSig       = 0x06054b50
	eocd64LocSig  = 0x07064b50
	eocd64Sig     = 0x06064b50
	dirHeaderSig  = 0x02014b50
	dirHeaderLen  = 46
	eocd64LocLen  = 20
	eocd64MinRead = 56
)

// Check bounds what archive/zip will allocate for an archive before
// it is opened. archive/zip reads every central-directory record from the
// directory's start until one does not parse, whatever count the end record
// gives, and keeps each in memory; so the records are counted here the same
// way, streaming, from every start archive/zip may choose, and the archive is
// refused when there are more than maxEntries of them or they take more
// than maxBytes. An archive whose end record cannot be found is let through:
// archive/zip refuses it too.
func Check(r io.ReaderAt, size int64, maxEntries int, maxBytes int64) error {
	end, endOff, ok := findEnd(r, size)
	if !ok {
		return nil
	}
	starts := []int64{}
	if end.offset < uint64(size) {
		starts = append(starts, int64(end.offset))
	}
	if end.size <= uint64(endOff) {
		if s := endOff - int64(end.size); len(starts) == 0 || s != starts[0] {
			starts = append(starts, s)
		}
	}
	if end.records > uint64(maxEntries) {
		return fmt.Errorf("%w: the end record counts %d entries (limit %d)", ErrTooManyEntries, end.records, maxEntries)
	}
	for _, s := range starts {
		n, bytes, err := countRecords(io.NewSectionReader(r, s, size-s), maxEntries, maxBytes)
		if err != nil {
			return err
		}
		if n > maxEntries || bytes > maxBytes {
			return fmt.Errorf("%w: more than %d entries or %d bytes of entries (limits %d, %d)", ErrTooManyEntries, n, bytes, maxEntries, maxBytes)
		}
	}
	return nil
}

// countRecords counts the central-directory records at the start of r,
// stopping as soon as either limit is passed.
func countRecords(r io.Reader, maxEntries int, maxBytes int64) (n int, total int64, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var h [dirHeaderLen]byte
	for n <= maxEntries && total <= maxBytes {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return n, total, nil
			}
			return n, total, fmt.Errorf("reading the central directory: %w", err)
		}
		if binary.LittleEndian.Uint32(h[:]) != dirHeaderSig {
			return n, total, nil
		}
		rest := int64(binary.LittleEndian.Uint16(h[28:])) + int64(binary.LittleEndian.Uint16(h[30:])) + int64(binary.LittleEndian.Uint16(h[32:]))
		if _, err := br.Discard(int(rest)); err != nil {
			if err == io.EOF {
				return n, total, nil
			}
			return n, total, fmt.Errorf("reading the central directory: %w", err)
		}
		n++
		total += dirHeaderLen + rest
	}
	return n, total, nil
}

// dirEnd is what the end records say about the central directory.
type dirEnd struct {
	records, size, offset uint64
}

// findEnd finds the end-of-central-directory record as archive/zip does (in
// the last 1 KiB, then the last 65 KiB) and, for a zip64 archive, the zip64
// end record. It returns the record and its offset.
func findEnd(r io.ReaderAt, size int64) (dirEnd, int64, bool) {
	var buf []byte
	var off int64 = -1
	for _, n := range []int64{1024, 65 * 1024} {
		n = min(n, size)
		buf = make([]byte, n)
		if _, err := r.ReadAt(buf, size-n); err != nil && err != io.EOF {
			return dirEnd{}, 0, false
		}
		if p := findEndSignature(buf); p >= 0 {
			off = size - n + int64(p)
			buf = buf[p:]
			break
		}
		if n == size {
			break
		}
	}
	if off < 0 {
		return dirEnd{}, 0, false
	}
	le := binary.LittleEndian
	d := dirEnd{
		records: uint64(le.Uint16(buf[10:])),
		size:    uint64(le.Uint32(buf[12:])),
		offset:  uint64(le.Uint32(buf[16:])),
	}
	if d.records != 0xffff && d.size != 0xffff && d.offset != 0xffffffff {
		return d, off, true
	}
	// zip64: the locator sits just before the end record.
	if off < eocd64LocLen {
		return d, off, true
	}
	var loc [eocd64LocLen]byte
	if _, err := r.ReadAt(loc[:], off-eocd64LocLen); err != nil || le.Uint32(loc[:]) != eocd64LocSig {
		return d, off, true
	}
	p := le.Uint64(loc[8:])
	if p > uint64(size) || uint64(size)-p < eocd64MinRead {
		return d, off, true
	}
	var rec [eocd64MinRead]byte
	if _, err := r.ReadAt(rec[:], int64(p)); err != nil || le.Uint32(rec[:]) != eocd64Sig {
		return d, off, true
	}
	return dirEnd{records: le.Uint64(rec[32:]), size: le.Uint64(rec[40:]), offset: le.Uint64(rec[48:])}, int64(p), true
}

// findEndSignature returns the offset of the last end-of-central-directory
// signature in b whose comment fits, as archive/zip looks for it.
func findEndSignature(b []byte) int {
	for i := len(b) - eocdLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(b[i:]) == eocdSig {
			n := int(binary.LittleEndian.Uint16(b[i+eocdLen-2:]))
			if n+eocdLen+i > len(b) {
				return -1
			}
			return i
		}
	}
	return -1
}
