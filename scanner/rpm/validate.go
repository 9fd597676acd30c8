package rpm

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go; go-rpmdb opens rpmdb.sqlite with it
)

// The reader (github.com/knqyf263/go-rpmdb) walks a database in a goroutine
// of its own and trusts what it reads: on a corrupt or hostile file it can
// panic in that goroutine (which no recover can catch, and which ends the
// process), loop forever (an overflow page of the wrong type, a cycle of
// pages), or allocate what a length field says (a 4 GiB blob in NDB, 2^31
// index entries in a header). So before go-rpmdb reads a file, validate
// walks it the way go-rpmdb will, checking every offset, length, page type
// and page chain that go-rpmdb would follow, and every header blob go-rpmdb
// would import. A file that passes is one go-rpmdb reads within bounds: the
// blobs it yields add up to at most the size of the file, and each header's
// entries lie, in order and without overlap, inside its data.

// format is an rpm database's on-disk format.
type format int

const (
	formatBDB format = iota + 1
	formatNDB
	formatSQLite
)

func (f format) String() string {
	switch f {
	case formatBDB:
		return "BerkeleyDB"
	case formatNDB:
		return "NDB"
	case formatSQLite:
		return "SQLite"
	}
	return "unknown"
}

var (
	sqliteMagic = []byte("SQLite format 3\x00")
	// errNotDB is wrapped when a file is none of the three formats.
	errNotDB = errors.New("not an rpm database (no BerkeleyDB hash, NDB or SQLite header)")
	// errCorrupt is wrapped by every structural error of a database.
	errCorrupt = errors.New("corrupt rpm database")
)

const (
	bdbHashMagic    = 0x00061561
	bdbPageHeader   = 26
	bdbHashPage     = 13 // sorted hash page
	bdbHashUnsorted = 2  // hash page of Berkeley DB before 4.6
	bdbOffPage      = 3  // HOFFPAGE: an item stored in overflow pages
	bdbOffPageSize  = 12
	bdbOverflowPage = 7
	bdbMetaPage     = 8
	bdbMetaSize     = 512

	ndbHeaderMagic   = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic     = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic     = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	ndbMaxSlotPages  = 2048
	ndbSlotsPerPage  = 4096 / 16
	ndbBlobHeaderLen = 16

	// headerMaxBytes is rpm's own bound on a header (lib/header.c).
	headerMaxBytes = 256 << 20
)

// detect returns the format of the database r (of size bytes), as go-rpmdb
// decides it: SQLite by its magic, else NDB by its header, else BerkeleyDB
// by its hash metadata page.
func detect(r io.ReaderAt, size int64) (format, error) {
	head := make([]byte, bdbMetaSize)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, sqliteMagic):
		return formatSQLite, nil
	case len(head) >= 4 && binary.LittleEndian.Uint32(head) == ndbHeaderMagic:
		return formatNDB, nil
	case len(head) >= 16 && (binary.LittleEndian.Uint32(head[12:]) == bdbHashMagic || binary.BigEndian.Uint32(head[12:]) == bdbHashMagic):
		return formatBDB, nil
	}
	return 0, errNotDB
}

// validate checks the database r (size bytes) of format f as described
// above. For SQLite it needs the file's path (dsn) and the size of the
// write-ahead log beside it (-1 when there is none), and reports whether the
// database has a Packages table at all: one without is empty (rpm creates
// the table when it opens such a file).
func validate(ctx context.Context, f format, r io.ReaderAt, size int64, path string, walSize int64) (hasPackages bool, err error) {
	switch f {
	case formatBDB:
		return true, validateBDB(ctx, r, size)
	case formatNDB:
		return true, validateNDB(ctx, r, size)
	case formatSQLite:
		return validateSQLite(ctx, path, size, walSize)
	}
	return false, errNotDB
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

// readAt reads exactly len(p) bytes at off.
func readAt(r io.ReaderAt, p []byte, off int64, size int64, what string) error {
	if off < 0 || off > size || int64(len(p)) > size-off {
		return corrupt("%s at offset %d (%d bytes) is past the end of the file (%d bytes)", what, off, len(p), size)
	}
	if _, err := r.ReadAt(p, off); err != nil {
		return fmt.Errorf("reading %s at offset %d: %w", what, off, err)
	}
	return nil
}

// validateBDB walks a Berkeley DB hash database as go-rpmdb's bdb.Read does:
// every page from 0 to the last, the index of every hash page, and the
// overflow-page chain of every HOFFPAGE item, validating each item as an rpm
// header. An overflow page may belong to one chain only, so the items add up
// to at most the file.
func validateBDB(ctx context.Context, r io.ReaderAt, size int64) error {
	if size < bdbMetaSize {
		return corrupt("BerkeleyDB: %d bytes, shorter than the %d-byte metadata page", size, bdbMetaSize)
	}
	meta := make([]byte, bdbMetaSize)
	if err := readAt(r, meta, 0, size, "BerkeleyDB metadata page"); err != nil {
		return err
	}
	// go-rpmdb reads the metadata little-endian and, when the magic reads
	// byte-swapped, reads it again big-endian (the rest of the page keeps
	// its little-endian reading).
	var order binary.ByteOrder = binary.LittleEndian
	if binary.LittleEndian.Uint32(meta[12:]) != bdbHashMagic {
		order = binary.BigEndian
	}
	if order.Uint32(meta[12:]) != bdbHashMagic {
		return corrupt("BerkeleyDB: bad hash magic %#x", binary.LittleEndian.Uint32(meta[12:]))
	}
	pageSize := order.Uint32(meta[20:])
	if meta[24] != 0 {
		return corrupt("BerkeleyDB: encrypted (algorithm %d), not supported", meta[24])
	}
	if meta[25] != bdbMetaPage {
		return corrupt("BerkeleyDB: first page has type %d, not a hash metadata page", meta[25])
	}
	switch pageSize {
	case 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536:
	default:
		return corrupt("BerkeleyDB: invalid page size %d", pageSize)
	}
	lastPage := order.Uint32(meta[32:])
	ps := int64(pageSize)
	if (int64(lastPage)+1)*ps > size {
		return corrupt("BerkeleyDB: last page %d of %d bytes is past the end of the file (%d bytes)", lastPage, pageSize, size)
	}
	// Pages are read with the page order of the hash pages themselves:
	// go-rpmdb parses page headers in the metadata's byte order.
	page := make([]byte, ps)
	over := make([]byte, ps)
	used := map[uint32]bool{} // overflow pages already part of an item
	var total int64
	for pno := uint32(0); pno <= lastPage; pno++ {
		if pno%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := readAt(r, page, int64(pno)*ps, size, fmt.Sprintf("BerkeleyDB page %d", pno)); err != nil {
			return err
		}
		if t := page[25]; t != bdbHashPage && t != bdbHashUnsorted {
			continue
		}
		entries := int(order.Uint16(page[20:]))
		if entries%2 != 0 {
			return corrupt("BerkeleyDB page %d: odd number of hash entries (%d)", pno, entries)
		}
		// go-rpmdb computes the end of the index in uint16: keep it
		// below 65536 so that the sum does not wrap.
		end := bdbPageHeader + 2*entries
		if int64(end) > ps || end > 0xffff {
			return corrupt("BerkeleyDB page %d: %d hash entries do not fit in the page", pno, entries)
		}
		idx := page[bdbPageHeader:end]
		for i := 2; i+2 <= len(idx); i += 4 { // the values of the key/value pairs
			off := int(order.Uint16(idx[i:]))
			if int64(off) >= ps {
				return corrupt("BerkeleyDB page %d: item offset %d outside the page", pno, off)
			}
			if page[off] != bdbOffPage {
				continue
			}
			if int64(off+bdbOffPageSize) > ps || off+bdbOffPageSize > 0xffff {
				return corrupt("BerkeleyDB page %d: overflow item at offset %d crosses the page end", pno, off)
			}
			blob, err := bdbChain(r, size, order, ps, order.Uint32(page[off+4:]), over, used)
			if err != nil {
				return fmt.Errorf("BerkeleyDB page %d item at %d: %w", pno, off, err)
			}
			total += int64(len(blob))
			if total > size {
				return corrupt("BerkeleyDB: items add up to more than the file")
			}
			if err := validateHeader(blob); err != nil {
				return fmt.Errorf("BerkeleyDB page %d item at %d: %w", pno, off, err)
			}
		}
	}
	return nil
}

// bdbChain returns the item stored in the chain of overflow pages starting
// at pno, as go-rpmdb's HashPageValueContent concatenates it.
func bdbChain(r io.ReaderAt, size int64, order binary.ByteOrder, ps int64, pno uint32, buf []byte, used map[uint32]bool) ([]byte, error) {
	var out []byte
	for pno != 0 {
		if used[pno] {
			return nil, corrupt("overflow page %d is used twice (a cycle or a shared page)", pno)
		}
		used[pno] = true
		// go-rpmdb computes the offset as a uint32 product: it must not
		// wrap.
		off := int64(pno) * ps
		if off > 0xffffffff {
			return nil, corrupt("overflow page %d is past what a 32-bit offset reaches", pno)
		}
		if err := readAt(r, buf, off, size, fmt.Sprintf("overflow page %d", pno)); err != nil {
			return nil, err
		}
		if buf[25] != bdbOverflowPage {
			return nil, corrupt("page %d in an overflow chain has type %d, not an overflow page", pno, buf[25])
		}
		next := order.Uint32(buf[16:])
		if next == 0 {
			n := int(order.Uint16(buf[22:]))
			if int64(bdbPageHeader+n) > ps || bdbPageHeader+n > 0xffff {
				return nil, corrupt("overflow page %d: %d bytes of data do not fit in the page", pno, n)
			}
			out = append(out, buf[bdbPageHeader:bdbPageHeader+n]...)
		} else {
			out = append(out, buf[bdbPageHeader:]...)
		}
		pno = next
	}
	return out, nil
}

// validateNDB walks an NDB Packages.db as go-rpmdb's ndb.Read does: the
// header, the slot pages, and the blob of every used slot. Blobs must not
// overlap, so they add up to at most the file.
func validateNDB(ctx context.Context, r io.ReaderAt, size int64) error {
	hdr := make([]byte, 32)
	if err := readAt(r, hdr, 0, size, "NDB header"); err != nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint32(hdr) != ndbHeaderMagic {
		return corrupt("NDB: bad header magic")
	}
	if v := le.Uint32(hdr[4:]); v != 0 {
		return corrupt("NDB: version %d not supported", v)
	}
	npages := le.Uint32(hdr[12:])
	if npages == 0 || npages > ndbMaxSlotPages {
		return corrupt("NDB: %d slot pages (want 1 to %d)", npages, ndbMaxSlotPages)
	}
	nslots := int64(npages)*ndbSlotsPerPage - 2 // the header takes the first two slots
	slots := make([]byte, nslots*16)
	if err := readAt(r, slots, 32, size, "NDB slot pages"); err != nil {
		return err
	}
	type span struct{ start, end int64 }
	var spans []span
	for i := int64(0); i < nslots; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s := slots[i*16 : i*16+16]
		if le.Uint32(s) != ndbSlotMagic {
			return corrupt("NDB slot %d: bad slot magic", i)
		}
		pkgIndex := le.Uint32(s[4:])
		if pkgIndex == 0 {
			continue
		}
		off := int64(le.Uint32(s[8:])) * ndbBlobHeaderLen
		bh := make([]byte, ndbBlobHeaderLen)
		if err := readAt(r, bh, off, size, fmt.Sprintf("NDB blob header of package %d", pkgIndex)); err != nil {
			return err
		}
		if le.Uint32(bh) != ndbBlobMagic {
			return corrupt("NDB package %d: bad blob magic", pkgIndex)
		}
		if le.Uint32(bh[4:]) != pkgIndex {
			return corrupt("NDB package %d: blob belongs to package %d", pkgIndex, le.Uint32(bh[4:]))
		}
		n := int64(le.Uint32(bh[12:]))
		start := off + ndbBlobHeaderLen
		if n > size-start {
			return corrupt("NDB package %d: blob of %d bytes at offset %d is past the end of the file (%d bytes)", pkgIndex, n, start, size)
		}
		spans = append(spans, span{off, start + n})
		blob := make([]byte, n)
		if err := readAt(r, blob, start, size, fmt.Sprintf("NDB blob of package %d", pkgIndex)); err != nil {
			return err
		}
		if err := validateHeader(blob); err != nil {
			return fmt.Errorf("NDB package %d: %w", pkgIndex, err)
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return int(a.start - b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return corrupt("NDB: two package blobs overlap at offset %d", spans[i].start)
		}
	}
	return nil
}

// validateSQLite reads every blob of the Packages table of an rpmdb.sqlite,
// read-only, and validates it as an rpm header. The blobs must add up to at
// most the file and its write-ahead log. A database without a Packages
// table has no packages.
//
// Without a log (walSize < 0) the file is opened immutable: SQLite reads it
// alone, as go-rpmdb will. With one it is opened read-only but not
// immutable, so that SQLite reads the log too (and builds its index in a
// -shm file beside the private copy), as go-rpmdb will.
func validateSQLite(ctx context.Context, path string, size, walSize int64) (bool, error) {
	query := "mode=ro&immutable=1"
	if walSize >= 0 {
		query = "mode=ro"
		size += walSize
	}
	dsn := (&url.URL{Scheme: "file", Path: path, RawQuery: query}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return false, fmt.Errorf("SQLite: opening: %w", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'Packages'`).Scan(&n); err != nil {
		return false, fmt.Errorf("%w: SQLite: reading the schema: %w", errCorrupt, err)
	}
	if n == 0 {
		return false, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT hnum, blob FROM Packages`)
	if err != nil {
		return false, fmt.Errorf("%w: SQLite: querying Packages: %w", errCorrupt, err)
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var hnum int64
		var blob []byte
		if err := rows.Scan(&hnum, &blob); err != nil {
			return false, fmt.Errorf("%w: SQLite: reading Packages: %w", errCorrupt, err)
		}
		total += int64(len(blob))
		if total > size {
			return false, corrupt("SQLite: package blobs add up to more than the file")
		}
		if err := validateHeader(blob); err != nil {
			return false, fmt.Errorf("SQLite package %d: %w", hnum, err)
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("%w: SQLite: reading Packages: %w", errCorrupt, err)
	}
	return true, nil
}

// rpm header data types (rpm's lib/rpmtag.h).
const (
	typeNull        = 0
	typeString      = 6
	typeBin         = 7
	typeStringArray = 8
	typeI18NString  = 9
	typeMax         = 9
)

var typeSize = [typeMax + 1]int{0, 1, 1, 2, 4, 8, -1, 1, -1, -1}

// Region tags: the first entry of a header that has a region; tags below
// tagI18NTable are reserved for them.
const (
	tagI18NTable        = 100
	tagHeaderImage      = 61
	tagHeaderSignatures = 62
	tagHeaderImmutable  = 63
)

// validateRegion checks the region entry e (the first of a header) and the
// trailer it points at in data, as rpm's hdrblobVerifyRegion does: a binary
// entry of 16 bytes whose trailer's negated offset counts between 1 and il
// entries.
func validateRegion(e, data []byte, il int64) error {
	be := binary.BigEndian
	typ, off, count := be.Uint32(e[4:]), int64(int32(be.Uint32(e[8:]))), be.Uint32(e[12:])
	if typ != typeBin || count != 16 {
		return corrupt("header region: type %d count %d, want a 16-byte binary entry", typ, count)
	}
	if off < 0 || off+16 > int64(len(data)) {
		return corrupt("header region: trailer at offset %d outside the %d data bytes", off, len(data))
	}
	// The trailer's negated offset counts the region's entries; with the
	// region entry at offset 0 the region covers all of them.
	roff := -int64(int32(be.Uint32(data[off+8:])))
	if roff%16 != 0 || roff < 0 || roff/16 > il || (off != 0 && roff < 16) {
		return corrupt("header region: trailer counts %d bytes of entries for %d entries", roff, il)
	}
	return nil
}

// validateHeader checks an rpm header blob as stored in a database: il and
// dl (big-endian int32 counts of index entries and data bytes), il entries
// of 16 bytes (tag, type, offset, count), then dl bytes of data. Every entry
// must have a known type, an offset aligned for its type and inside the
// data, and data that fits: count NUL-terminated strings for the string
// types, count items of the type's size for the others. The entries after
// a region tag must lie in order without overlap (rpm's own rule in
// hdrblobVerifyInfo). Together these bound what go-rpmdb allocates and
// scans for the header by the size of the blob.
func validateHeader(b []byte) error {
	if len(b) < 8 {
		return corrupt("header: %d bytes, shorter than the 8-byte preamble", len(b))
	}
	be := binary.BigEndian
	il, dl := int64(int32(be.Uint32(b))), int64(int32(be.Uint32(b[4:])))
	if il < 1 {
		return corrupt("header: %d index entries", il)
	}
	if dl < 0 {
		return corrupt("header: negative data length %d", dl)
	}
	dataStart := 8 + 16*il
	dataEnd := dataStart + dl
	if il > int64(len(b)) || dataEnd > int64(len(b)) {
		return corrupt("header: %d index entries and %d data bytes do not fit in %d bytes", il, dl, len(b))
	}
	if dataEnd >= headerMaxBytes {
		return corrupt("header: %d bytes, over rpm's limit of %d", dataEnd, headerMaxBytes)
	}
	first := 0
	if t := int32(be.Uint32(b[8:])); t == tagHeaderImage || t == tagHeaderSignatures || t == tagHeaderImmutable {
		first = 1
		if err := validateRegion(b[8:24], b[dataStart:dataEnd], il); err != nil {
			return err
		}
	}
	var end int64
	for i := int64(0); i < il; i++ {
		e := b[8+16*i : 8+16*i+16]
		tag := int32(be.Uint32(e))
		typ := be.Uint32(e[4:])
		off := int64(int32(be.Uint32(e[8:])))
		count := int64(be.Uint32(e[12:]))
		if typ > typeMax {
			return corrupt("header entry %d (tag %d): unknown type %d", i, tag, typ)
		}
		if off < 0 || off > dl {
			return corrupt("header entry %d (tag %d): offset %d outside the %d data bytes", i, tag, off, dl)
		}
		if a := int64(typeSize[typ]); a > 1 && off%a != 0 {
			return corrupt("header entry %d (tag %d): offset %d not aligned for type %d", i, tag, off, typ)
		}
		if i < int64(first) {
			continue // the region tag points at its trailer
		}
		if tag < tagI18NTable {
			return corrupt("header entry %d: tag %d below the first data tag", i, tag)
		}
		if typ == typeNull {
			return corrupt("header entry %d (tag %d): null type", i, tag)
		}
		if count < 1 || count > dl {
			return corrupt("header entry %d (tag %d): count %d for %d data bytes", i, tag, count, dl)
		}
		var n int64
		switch typ {
		case typeString, typeStringArray, typeI18NString:
			if typ == typeString && count != 1 {
				return corrupt("header entry %d (tag %d): string with count %d", i, tag, count)
			}
			data := b[dataStart+off : dataEnd]
			for c := int64(0); c < count; c++ {
				z := bytes.IndexByte(data[n:], 0)
				if z < 0 {
					return corrupt("header entry %d (tag %d): string %d not terminated inside the data", i, tag, c)
				}
				n += int64(z) + 1
			}
		default:
			n = int64(typeSize[typ]) * count
			if n > dl-off {
				return corrupt("header entry %d (tag %d): %d items of type %d past the end of the data", i, tag, count, typ)
			}
		}
		if off < end {
			return corrupt("header entry %d (tag %d): data at offset %d overlaps the previous entry's", i, tag, off)
		}
		end = off + n
	}
	return nil
}
