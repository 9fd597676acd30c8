// Package layer reads a container-image layer blob once, as a stream: it
// hashes the raw bytes, decompresses them (gzip, zstd or none, detected from
// the magic bytes), walks the tar, hands each regular file's path to the
// scanners' Match, and keeps only the files some scanner asked for. It also
// records the layer's whiteouts and opaque directories for the coalescer.
//
// Scanners that implement scanner.FileMatcher are also asked about the
// files their Match refused: first from the tar header (MatchFile), then,
// for the files that pass, from their first scanner.HeadSize bytes
// (MatchHead). Only those first bytes are read ahead; a file nobody wants is
// streamed past as before. A file wanted only if it contains a marker is
// kept while it is read (in memory or spooled, by the same rules as other
// kept files) and dropped at its end when the marker was not found.
//
// # Errors
//
// Read sorts its failures so that a caller can decide whether to retry:
//
//   - errors.Is(err, ErrBadLayer): the blob itself is unusable and reading it
//     again gives the same answer. This covers corrupt or truncated
//     compression, a malformed tar, a layer over the entry limit, and a
//     digest mismatch. A content error is only reported as ErrBadLayer once
//     the whole blob was read and its digest matched: bytes that do not hash
//     to the expected digest are reported as ErrDigestMismatch instead (which
//     also matches ErrBadLayer), because corruption in transit or in a cache
//     is the likelier cause.
//   - errors.Is(err, ErrDigestMismatch): the bytes read do not hash to the
//     expected digest. A caller reading from a local cache should evict the
//     cached blob and fetch it again; from the registry, it is permanent.
//   - errors.Is(err, ErrLimit) (with ErrBadLayer): the layer is over one of
//     the bounds of Options: more to spool to disk than MaxSpool, more
//     decompressed bytes than MaxUncompressed, more files for one scanner
//     than MaxFilesPerScanner. The message names the limit. Permanent, like
//     any ErrBadLayer.
//   - errors.Is(err, ErrSpoolBusy): the process-wide spool budget
//     (Options.ProcessSpool) is taken by other reads. Transient: retry
//     later.
//   - errors.Is(err, ErrRead): the io.Reader passed to Read failed (a network
//     or disk error). The reader's own error is wrapped too, so errors.Is and
//     errors.As see it. Transient: retry.
//   - errors.Is(err, context.Canceled) or context.DeadlineExceeded: the
//     context ended. Transient.
//   - anything else is a local problem: an invalid argument (a malformed
//     digest) or a failure to spool a file to the temporary directory.
//
// Error messages name the layer and where the failure happened, for example
// "layer sha256:…: bad layer: gzip: unexpected EOF after 1234 bytes of the
// blob" or "layer sha256:…: bad layer: tar entry 57 ("usr/bin/x"): …".
package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/stevedore-dev/stevedore/internal/layer/verify"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// Sentinel errors; see the package documentation for how Read uses them.
var (
	// ErrBadLayer is wrapped by every error caused by the blob's content:
	// corrupt or truncated compression, a malformed tar, too many entries,
	// or a digest mismatch. Such a layer is permanently unusable.
	ErrBadLayer = errors.New("bad layer")
	// ErrDigestMismatch is wrapped (together with ErrBadLayer) when the
	// bytes read do not hash to the expected digest.
	ErrDigestMismatch = verify.ErrMismatch
	// ErrRead is wrapped, together with the reader's own error, when the
	// io.Reader given to Read fails. It is transient.
	ErrRead = errors.New("reading the blob")
	// ErrLimit is wrapped (together with ErrBadLayer) when a layer is over
	// one of the bounds of Options.
	ErrLimit = errors.New("layer over a limit")
	// ErrSpoolBusy is wrapped when a file could not be spooled because
	// the process-wide spool budget is in use by other reads. It is
	// transient.
	ErrSpoolBusy = errors.New("spool budget of the process in use")
)

// errUnsupported is the content error for a compression Read does not
// decompress.
var errUnsupported = errors.New("compression not supported (only gzip, zstd and uncompressed tar are)")

// Defaults for the zero fields of Options.
const (
	DefaultMaxFileSize      = 256 << 20
	DefaultMaxInMemory      = 4 << 20
	DefaultMaxTotalInMemory = 16 << 20
	DefaultMaxEntries       = 5_000_000
	// DefaultMaxSpool bounds the size of one read's spool file (1 GiB).
	DefaultMaxSpool = 1 << 30
	// DefaultMaxUncompressed bounds the decompressed size of a layer
	// (32 GiB).
	DefaultMaxUncompressed = 32 << 30
	// DefaultMaxFilesPerScanner bounds the files of one layer handed to
	// one scanner.
	DefaultMaxFilesPerScanner = 100_000
	// DefaultMaxProcessSpool is the size of a process's SpoolBudget when
	// none is configured (4 GiB).
	DefaultMaxProcessSpool = 4 << 30
)

// copyBufSize is the buffer for spooling a file: large writes, few system
// calls.
const copyBufSize = 256 << 10

// maxWarnings bounds Contents.Warnings; further warnings are counted in a
// last line instead, so a hostile layer cannot grow memory through them.
const maxWarnings = 100

// zstdMaxWindow is the largest zstd window accepted: 128 MiB, the default
// limit of the reference zstd tool (windowLog 27). It bounds the decoder's
// memory whatever a frame header claims.
const zstdMaxWindow = 1 << 27

// Options bound what Read keeps. The zero value means the defaults.
type Options struct {
	// MaxFileSize is the largest matched file kept (default 256 MiB). A
	// larger matched file is skipped with a warning in Contents.Warnings.
	MaxFileSize int64
	// MaxInMemory is the size up to which a matched file is kept in memory
	// (default 4 MiB); larger ones are spooled to a temporary file in
	// TempDir.
	MaxInMemory int64
	// MaxTotalInMemory bounds the bytes of all the files of one layer kept
	// in memory (default 16 MiB); once reached, further matched files are
	// spooled whatever their size. It keeps memory bounded when scanners
	// match many files (the language scanners match thousands of
	// manifests and every jar): a read's peak memory is about twice this
	// (the garbage collector's headroom), plus one buffer of MaxInMemory
	// (for files kept only if they hold a marker) and the decompressor's
	// buffers, whatever the layer's size.
	MaxTotalInMemory int64
	// TempDir is where spooled files go (default os.TempDir()).
	TempDir string
	// MaxEntries is the number of tar entries after which Read gives up
	// with an error wrapping ErrBadLayer (default 5,000,000).
	MaxEntries int
	// MaxSpool bounds the bytes one Read may spool to disk: the size of
	// its spool file, which grows with every kept file that does not stay
	// in memory, including files an entry later in the layer replaces
	// (default 1 GiB). Past it Read fails with ErrLimit.
	MaxSpool int64
	// ProcessSpool, when set, is the budget shared by every Read of the
	// process: what all their spool files may hold at once. A Read that
	// would go past it fails with ErrSpoolBusy (transient); the bytes are
	// given back when the Contents is closed.
	ProcessSpool *SpoolBudget
	// MaxUncompressed bounds the decompressed size of the layer (default
	// 32 GiB). Past it Read fails with ErrLimit.
	MaxUncompressed int64
	// MaxFilesPerScanner bounds the files of one layer one scanner is
	// given (default 100,000). Past it Read fails with ErrLimit: a
	// scanner's results would be partial, and memory grows with them.
	MaxFilesPerScanner int

	// zstdConcurrency is the zstd decoder's concurrency; 0 means 1. The
	// reader is safe with 2 (tests run both paths), but on this project's
	// 2-core machine 2 was slower in wall time and cost ~20 % more CPU
	// (BenchmarkReadZstdConcurrency: 0.43 s vs 0.53 s for a 333 MB layer),
	// since the layer's sha256 already runs on a goroutine of its own and a
	// node runs several workers. With 2 the
	// decoder holds about 5 MiB more than with 1 (a second block decoder
	// and the buffers between its goroutines), whatever the window; the
	// window itself (up to zstdMaxWindow) is held once either way.
	zstdConcurrency int
}

func (o Options) withDefaults() Options {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.MaxInMemory <= 0 {
		o.MaxInMemory = DefaultMaxInMemory
	}
	if o.MaxTotalInMemory <= 0 {
		o.MaxTotalInMemory = DefaultMaxTotalInMemory
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxSpool <= 0 {
		o.MaxSpool = DefaultMaxSpool
	}
	if o.MaxUncompressed <= 0 {
		o.MaxUncompressed = DefaultMaxUncompressed
	}
	if o.MaxFilesPerScanner <= 0 {
		o.MaxFilesPerScanner = DefaultMaxFilesPerScanner
	}
	if o.zstdConcurrency <= 0 {
		o.zstdConcurrency = 1
	}
	return o
}

// Contents is what Read found in one layer.
type Contents struct {
	// Digest is the layer's digest, verified against the bytes read.
	Digest report.Digest
	// Files[i] are the files matched by the i-th scanner given to Read, in
	// tar order. When a path occurs more than once in the tar, only its
	// last occurrence counts (as when the layer is extracted).
	Files [][]scanner.File
	// Whiteouts are the paths this layer deletes from lower layers: a
	// ".wh.name" entry in directory "a" gives "a/name".
	Whiteouts []string
	// OpaqueDirs are the directories whose lower-layer contents this layer
	// hides: a ".wh..wh..opq" entry in "a/b" gives "a/b", and one at the
	// root gives ".".
	OpaqueDirs []string
	// CompressedBytes is the size of the blob; UncompressedBytes the size
	// of the decompressed stream (equal for an uncompressed layer).
	CompressedBytes, UncompressedBytes int64
	// Warnings are problems that did not stop the read: skipped entries and
	// files, with the reason.
	Warnings []string

	blobs  []*blob
	spool  *spool // the files spooled to disk, nil when none was
	closed *atomic.Bool
}

// Close removes the files spooled to disk. The Files' Open fails after
// Close; files kept in memory are freed with the Contents. Close is
// idempotent.
func (c *Contents) Close() error {
	if c == nil || c.closed == nil || c.closed.Swap(true) {
		return nil
	}
	if c.spool == nil {
		return nil
	}
	c.spool.release()
	cerr := c.spool.f.Close()
	if err := os.Remove(c.spool.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return cerr
}

// spool is the one temporary file of a Read that holds all the files
// spooled to disk, one after the other: a file per layer rather than per
// kept file, so that spooling thousands of small files (once the memory
// budget is spent) costs writes, not file creations and removals.
type spool struct {
	f   *os.File
	end int64 // where the next file goes
	// size is the most the file held (end goes back when a file is
	// dropped; its bytes are written over); max bounds it.
	size, max int64
	// budget is the process's, nil when there is none; reserved is what
	// this spool holds of it.
	budget   *SpoolBudget
	reserved int64
}

// grow makes room for the spool to hold end bytes, within its bounds.
func (s *spool) grow(end int64) error {
	if end <= s.size {
		return nil
	}
	if end > s.max {
		return &limitError{what: "bytes spooled to disk", limit: s.max, setting: "--layer-max-spool"}
	}
	if s.budget != nil {
		if !s.budget.reserve(end - s.size) {
			return fmt.Errorf("%w: %d of its %d bytes are in use by the layers read at once (--process-max-spool); try later",
				ErrSpoolBusy, s.budget.Used(), s.budget.Max())
		}
		s.reserved += end - s.size
	}
	s.size = end
	return nil
}

// release gives the spool's bytes back to the process's budget.
func (s *spool) release() {
	if s.budget != nil {
		s.budget.release(s.reserved)
		s.reserved = 0
	}
}

// limitError is a layer over one of the bounds of Options.
type limitError struct {
	what    string
	limit   int64
	setting string
}

func (e *limitError) Error() string {
	return fmt.Sprintf("more than the limit of %d %s (%s)", e.limit, e.what, e.setting)
}

func (e *limitError) Unwrap() error { return ErrLimit }

// spoolWriter writes at the end of the spool. It remembers a write error so
// that it is not taken for a read error of the layer.
type spoolWriter struct {
	s   *spool
	err error
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	if err := w.s.grow(w.s.end + int64(len(p))); err != nil {
		if w.err == nil {
			w.err = err
		}
		return 0, err
	}
	n, err := w.s.f.WriteAt(p, w.s.end)
	w.s.end += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// blob is the content of one kept file, in memory or spooled; hardlinks and
// several scanners share it.
type blob struct {
	size   int64
	data   []byte
	spool  *spool // when spooled: the file holds it at offset off
	off    int64
	closed *atomic.Bool
	// sniffed are the indexes of the scanners that kept the file through
	// scanner.FileMatcher: a hardlink to it is kept for them too.
	sniffed []int
}

// memFile is the content of a file kept in memory, as Open returns it: a
// bytes.Reader, so also an io.ReaderAt and an io.Seeker.
type memFile struct{ *bytes.Reader }

// Close does nothing.
func (memFile) Close() error { return nil }

// spoolFile is the content of a spooled file, as Open returns it: a section
// of the spool, so also an io.ReaderAt and an io.Seeker.
type spoolFile struct{ *io.SectionReader }

// Close does nothing: the spool is closed with the Contents.
func (spoolFile) Close() error { return nil }

// file is a kept file as a scanner sees it.
type file struct {
	path    string
	blob    *blob
	dropped bool // replaced by a later entry at the same path
}

var _ scanner.File = (*file)(nil)

// Path returns the file's clean relative path in the layer.
func (f *file) Path() string { return f.path }

// Size returns the file's size in bytes.
func (f *file) Size() int64 { return f.blob.size }

// Open returns the file's contents. It may be called any number of times,
// concurrently, until the Contents is closed. What it returns also
// implements io.ReaderAt and io.Seeker: a section of the spool file for a
// spooled file, a bytes.Reader for one kept in memory.
func (f *file) Open() (io.ReadCloser, error) {
	if f.blob.closed.Load() {
		return nil, fmt.Errorf("open %s: %w (layer contents closed)", f.path, os.ErrClosed)
	}
	if f.blob.spool != nil {
		return spoolFile{io.NewSectionReader(f.blob.spool.f, f.blob.off, f.blob.size)}, nil
	}
	return memFile{bytes.NewReader(f.blob.data)}, nil
}

// Read reads one layer blob from r in a single pass and returns the files the
// scanners matched, with the layer's whiteouts. want is the blob's digest
// (sha256 or sha512); the bytes are hashed as they stream and Read never
// returns Contents whose digest did not match. The whole of r is read, also
// past the end of the tar. The context is checked between tar entries and on
// every read from r. The caller must Close the returned Contents.
//
// Each regular file's clean path ("./usr/../etc/x" -> "etc/x") is offered to
// every scanner's Match; only matched files are read, the others are skipped
// without being buffered. A hardlink is offered under its own path and
// resolves to the content of its target, which must have been kept earlier
// in the same layer (a target no scanner matched was not kept: the link is
// then skipped with a warning). Entries whose path escapes the root are
// skipped with a warning. Whiteout entries are recorded, not offered.
//
// See the package documentation for how errors are classified.
func Read(ctx context.Context, r io.Reader, want report.Digest, ss []scanner.Scanner, opts Options) (*Contents, error) {
	if _, err := report.ParseDigest(string(want)); err != nil {
		return nil, fmt.Errorf("layers.Read: %w", err)
	}
	dg, err := verify.New(want)
	if err != nil {
		return nil, fmt.Errorf("layers.Read: %w", err)
	}
	var ah *verify.Async
	if v, ok := r.(Verifier); !ok || v.VerifiedDigest() != want {
		ah = verify.NewAsync(dg)
		defer ah.Close()
	}
	closed := new(atomic.Bool)
	rd := &reader{
		ctx:  ctx,
		want: want,
		ss:   ss,
		opts: opts.withDefaults(),
		src:  &source{ctx: ctx, r: r, h: ah, d: dg},
		c: &Contents{
			Digest: want,
			Files:  make([][]scanner.File, len(ss)),
			closed: closed,
		},
		closed: closed,
		kept:   map[string]*blob{},
		byPath: map[string][]*file{},
	}
	if err := rd.run(); err != nil {
		rd.c.Close()
		return nil, err
	}
	return rd.c, nil
}

// Verifier is implemented by a blob reader that checks the bytes it
// delivers against a digest itself (verify.Reader, the blob cache's
// readers: of a cached blob, and its Tee of a blob being fetched): when they
// do not match, its last Read fails instead of returning io.EOF. Read does
// not hash again the bytes of a Verifier of the digest it was given. Such a
// failure is reported as a mismatch would be when Read hashes (ErrBadLayer
// and ErrDigestMismatch, wrapping the reader's error) when the reader's
// error wraps verify.ErrMismatch, and as a read error (ErrRead) otherwise,
// like any other of the reader's.
type Verifier = verify.Verified

// source wraps the caller's reader: it hashes and counts the bytes, checks
// the context, and remembers the reader's own error so that it can be told
// apart from a content error further up the stack.
//
// One goroutine at a time reads it: the zstd decoder's own goroutine while
// it runs, then Read's, once stopDecoder has returned. Its count and errors
// may be read from any goroutine at any time, through state.
type source struct {
	ctx context.Context
	r   io.Reader
	h   *verify.Async    // nil: the reader is a Verifier of the digest
	d   *verify.Digester // what h hashes into

	mu     sync.Mutex
	n      int64
	err    error // the reader's error, other than io.EOF
	ctxErr error
}

func (s *source) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		s.mu.Lock()
		s.ctxErr = err
		s.mu.Unlock()
		return 0, err
	}
	n, err := s.r.Read(p)
	if n > 0 && s.h != nil {
		s.h.Write(p[:n])
	}
	s.mu.Lock()
	s.n += int64(n)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	return n, err
}

// state returns the bytes read so far, the reader's error and the
// context's error seen by Read.
func (s *source) state() (n int64, err, ctxErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.err, s.ctxErr
}

// count returns the bytes read so far.
func (s *source) count() int64 {
	n, _, _ := s.state()
	return n
}

// decoded wraps the decompressor: it counts the uncompressed bytes and
// remembers the decompressor's error.
type decoded struct {
	r   io.Reader
	n   int64
	max int64 // the most bytes it may give
	err error
}

func (d *decoded) Read(p []byte) (int, error) {
	if le, ok := d.err.(*limitError); ok {
		return 0, le
	}
	if d.n >= d.max {
		// One byte more tells a stream of exactly max bytes from a
		// longer one.
		var one [1]byte
		n, err := io.ReadFull(d.r, one[:])
		switch {
		case n > 0:
			if d.err == nil {
				d.err = &limitError{what: "decompressed bytes", limit: d.max, setting: "--layer-max-uncompressed"}
			}
			return 0, d.err
		case err == io.EOF:
			return 0, io.EOF
		default:
			if d.err == nil {
				d.err = err
			}
			return 0, err
		}
	}
	if int64(len(p)) > d.max-d.n {
		p = p[:d.max-d.n]
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	if err != nil && err != io.EOF && d.err == nil {
		d.err = err
	}
	return n, err
}

// reader is the state of one Read.
type reader struct {
	ctx    context.Context
	want   report.Digest
	ss     []scanner.Scanner
	opts   Options
	src    *source
	br     *bufio.Reader
	dec    *decoded
	format string // "gzip", "zstd" or "tar"
	// closeDec releases the decompressor's resources, when it has any,
	// and returns once none of its goroutines reads br any more.
	closeDec func()
	c        *Contents
	closed   *atomic.Bool

	files    [][]*file          // per scanner, including dropped ones
	fms      []int              // indexes of the scanners that are FileMatchers
	head     []byte             // buffer for the first bytes of sniffed files
	copyBuf  []byte             // buffer for spooling
	scratch  []byte             // buffer for files kept only if they hold a marker
	kept     map[string]*blob   // path -> content kept in this layer
	byPath   map[string][]*file // path -> the files made for it
	memUsed  int64
	warnings int
	lastName string // name of the last tar entry read, for errors
}

func (r *reader) warn(format string, args ...any) {
	r.warnings++
	switch {
	case r.warnings <= maxWarnings:
		r.c.Warnings = append(r.c.Warnings, fmt.Sprintf(format, args...))
	case r.warnings == maxWarnings+1:
		r.c.Warnings = append(r.c.Warnings, "")
		fallthrough
	default:
		r.c.Warnings[maxWarnings] = fmt.Sprintf("%d more warnings not shown", r.warnings-maxWarnings)
	}
}

func (r *reader) run() error {
	r.br = bufio.NewReaderSize(r.src, 64<<10)
	r.files = make([][]*file, len(r.ss))
	for i, s := range r.ss {
		if _, ok := s.(scanner.FileMatcher); ok {
			r.fms = append(r.fms, i)
		}
	}
	defer r.stopDecoder()
	if err := r.open(); err != nil {
		return err
	}
	if err := r.walk(); err != nil {
		return r.contentFailure(err)
	}
	if err := r.drain(); err != nil {
		return err
	}
	if err := r.verify(nil); err != nil {
		return err
	}
	r.c.CompressedBytes = r.src.count()
	r.c.UncompressedBytes = r.dec.n
	for i, fs := range r.files {
		for _, f := range fs {
			if !f.dropped {
				r.c.Files[i] = append(r.c.Files[i], f)
			}
		}
	}
	return nil
}

// open detects the compression and sets up the decompressor.
func (r *reader) open() error {
	magic, err := r.br.Peek(6)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		// Peek fails with the source's error (or the context's).
		return r.contentFailure(fmt.Errorf("detecting compression: %w", err))
	}
	var dr io.Reader
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		r.format = "gzip"
		zr, err := gzip.NewReader(r.br)
		if err != nil {
			r.dec = &decoded{err: err}
			return r.contentFailure(err)
		}
		dr = zr
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		r.format = "zstd"
		// With a concurrency over 1 the decoder reads br on a goroutine
		// of its own, ahead of what it has delivered: Read's goroutine
		// only touches br again after stopDecoder.
		zr, err := zstd.NewReader(r.br,
			zstd.WithDecoderConcurrency(r.opts.zstdConcurrency),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			// Buffers sized for the frame up front rather than grown:
			// less CPU per byte (~10 % on a tar of real files, decoding
			// alone), a few hundred KiB more per decoder.
			zstd.WithDecoderLowmem(false),
		)
		if err != nil {
			r.dec = &decoded{err: err}
			return r.contentFailure(err)
		}
		r.closeDec = zr.Close
		dr = zr
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		r.format = "xz"
		return r.contentFailure(errUnsupported)
	case bytes.HasPrefix(magic, []byte("BZh")):
		r.format = "bzip2"
		return r.contentFailure(errUnsupported)
	default:
		r.format = "tar"
		dr = r.br
	}
	r.dec = &decoded{r: dr, max: r.opts.MaxUncompressed}
	return nil
}

// walk reads the tar entries.
func (r *reader) walk() error {
	tr := tar.NewReader(r.dec)
	for n := 1; ; n++ {
		if err := r.ctx.Err(); err != nil {
			return &entryError{n: n, after: r.lastName, err: err}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &entryError{n: n, after: r.lastName, err: err}
		}
		if n > r.opts.MaxEntries {
			return &entryError{n: n, name: hdr.Name, err: fmt.Errorf("more than the limit of %d tar entries", r.opts.MaxEntries)}
		}
		r.lastName = hdr.Name
		if err := r.entry(tr, n, hdr); err != nil {
			return err
		}
	}
}

// entryError is a failure at a tar entry; contentFailure turns it into the
// error Read returns.
type entryError struct {
	n     int
	name  string // the entry's name, when its header was read
	after string // else the name of the entry before
	err   error
}

func (e *entryError) Error() string { return e.where() + ": " + e.err.Error() }

// where names the entry: `tar entry 57 ("usr/bin/x")`.
func (e *entryError) where() string {
	switch {
	case e.name != "":
		return fmt.Sprintf("tar entry %d (%q)", e.n, e.name)
	case e.after != "":
		return fmt.Sprintf("tar entry %d (after %q)", e.n, e.after)
	default:
		return fmt.Sprintf("tar entry %d", e.n)
	}
}

func (e *entryError) Unwrap() error { return e.err }

// spoolError is a failure to write a kept file to the temporary directory:
// a local problem, not the layer's.
type spoolError struct{ err error }

func (e *spoolError) Error() string { return e.err.Error() }
func (e *spoolError) Unwrap() error { return e.err }

// cleanPath normalizes a tar entry name: no leading "./" or "/", cleaned.
// It reports false for a name that escapes the root.
func cleanPath(name string) (string, bool) {
	for {
		switch {
		case strings.HasPrefix(name, "/"):
			name = name[1:]
		case strings.HasPrefix(name, "./"):
			name = name[2:]
		default:
			name = path.Clean(name)
			if name == ".." || strings.HasPrefix(name, "../") {
				return "", false
			}
			return name, true
		}
	}
}

func (r *reader) entry(tr *tar.Reader, n int, hdr *tar.Header) error {
	name, ok := cleanPath(hdr.Name)
	if !ok {
		r.warn("tar entry %d (%q): path escapes the layer root; skipped", n, hdr.Name)
		return nil
	}
	if name == "." {
		return nil
	}
	if !utf8.ValidString(name) {
		// Names enter here, and only here: a name that is not UTF-8 could
		// not be stored (Postgres text is UTF-8), so no scanner, whiteout
		// or file list ever sees one.
		r.warn("tar entry %d (%q): name is not valid UTF-8; skipped", n, hdr.Name)
		return nil
	}
	dir, base := path.Dir(name), path.Base(name)
	if strings.HasPrefix(base, ".wh.") {
		switch {
		case base == ".wh..wh..opq":
			r.c.OpaqueDirs = append(r.c.OpaqueDirs, dir)
		case strings.HasPrefix(base, ".wh..wh."):
			// AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not a whiteout.
		default:
			switch target := base[len(".wh."):]; target {
			case "", ".", "..":
				// It would delete its own directory or a parent.
				r.warn("tar entry %d (%q): whiteout of %q is not a file name; ignored", n, hdr.Name, target)
			default:
				r.c.Whiteouts = append(r.c.Whiteouts, path.Join(dir, target))
			}
		}
		return nil
	}
	// Whatever this entry is, it replaces an earlier entry at this path.
	r.forget(name)
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		return r.regular(tr, n, name, hdr)
	case tar.TypeLink:
		return r.hardlink(n, name, hdr)
	}
	return nil
}

// forget drops what was kept for an earlier entry at name.
func (r *reader) forget(name string) {
	for _, f := range r.byPath[name] {
		f.dropped = true
	}
	delete(r.byPath, name)
	delete(r.kept, name)
}

// match returns the indexes of the scanners that want name.
func (r *reader) match(name string) []int {
	var m []int
	for i, s := range r.ss {
		if s.Match(name) {
			m = append(m, i)
		}
	}
	return m
}

func (r *reader) add(n int, name string, b *blob, matched []int) error {
	for _, i := range matched {
		if len(r.files[i]) >= r.opts.MaxFilesPerScanner {
			return &entryError{n: n, name: name, err: &limitError{
				what: "files for scanner " + r.ss[i].Info().Name, limit: int64(r.opts.MaxFilesPerScanner), setting: "--layer-max-packages"}}
		}
	}
	r.kept[name] = b
	for _, i := range matched {
		f := &file{path: name, blob: b}
		r.files[i] = append(r.files[i], f)
		r.byPath[name] = append(r.byPath[name], f)
	}
	return nil
}

// conditional is a scanner that wants a file only if it contains marker.
type conditional struct {
	scanner int
	marker  marker
}

func (r *reader) regular(tr *tar.Reader, n int, name string, hdr *tar.Header) error {
	matched := r.match(name)
	var src io.Reader = tr
	var sniffed []int
	var conds []conditional
	if len(r.fms) > 0 {
		var err error
		src, sniffed, conds, err = r.sniff(tr, name, hdr, matched)
		if err != nil {
			return &entryError{n: n, name: hdr.Name, err: noEOF(err)}
		}
		matched = append(matched, sniffed...)
	}
	if len(matched) == 0 && len(conds) == 0 {
		return nil // tr.Next skips the (rest of the) content
	}
	if hdr.Size > r.opts.MaxFileSize {
		if len(matched) > 0 {
			r.warn("tar entry %d (%q): %d bytes, more than the limit of %d; skipped", n, name, hdr.Size, r.opts.MaxFileSize)
		}
		// Only wanted if it holds a marker: too large to look, and
		// most likely not what the scanner is after. Skipped quietly.
		return nil
	}
	if len(matched) == 0 && hdr.Size <= r.opts.MaxInMemory {
		// Wanted only if it holds a marker, and small: look in a
		// reused buffer first, and keep it only if a marker is there.
		if int64(cap(r.scratch)) < hdr.Size {
			r.scratch = make([]byte, hdr.Size)
		}
		buf := r.scratch[:hdr.Size]
		if _, err := io.ReadFull(src, buf); err != nil {
			return &entryError{n: n, name: hdr.Name, err: noEOF(err)}
		}
		for _, c := range conds {
			if c.marker.in(buf) {
				matched = append(matched, c.scanner)
				sniffed = append(sniffed, c.scanner)
			}
		}
		if len(matched) == 0 {
			return nil
		}
		src, conds = bytes.NewReader(buf), nil
	}
	b := &blob{size: hdr.Size, closed: r.closed, sniffed: sniffed}
	r.c.blobs = append(r.c.blobs, b)
	found, err := r.store(src, n, hdr, b, conds)
	if err != nil {
		return err
	}
	for k, c := range conds {
		if found[k] {
			matched = append(matched, c.scanner)
			b.sniffed = append(b.sniffed, c.scanner)
		}
	}
	if len(matched) == 0 {
		// Kept only to look for markers, which were not there.
		r.drop(b)
		return nil
	}
	return r.add(n, name, b, matched)
}

// store reads the entry's content into b: in memory while the budgets
// allow, else into the layer's spool file. found says, per conditional
// scanner, whether its marker is in the content.
func (r *reader) store(src io.Reader, n int, hdr *tar.Header, b *blob, conds []conditional) ([]bool, error) {
	if hdr.Size <= r.opts.MaxInMemory && r.memUsed+hdr.Size <= r.opts.MaxTotalInMemory {
		b.data = make([]byte, hdr.Size)
		if _, err := io.ReadFull(src, b.data); err != nil {
			return nil, &entryError{n: n, name: hdr.Name, err: noEOF(err)}
		}
		r.memUsed += hdr.Size
		found := make([]bool, len(conds))
		for k, c := range conds {
			found[k] = c.marker.in(b.data)
		}
		return found, nil
	}
	return r.spoolEntry(src, n, hdr, b, conds)
}

// spoolEntry copies the entry's content to the end of the layer's spool
// file (created on first use), looking for the conditional scanners'
// markers on the way.
func (r *reader) spoolEntry(src io.Reader, n int, hdr *tar.Header, b *blob, conds []conditional) ([]bool, error) {
	if r.c.spool == nil {
		f, err := os.CreateTemp(r.opts.TempDir, "stevedore-layer-*")
		if err != nil {
			return nil, &entryError{n: n, name: hdr.Name, err: &spoolError{fmt.Errorf("spooling: %w", err)}}
		}
		r.c.spool = &spool{f: f, max: r.opts.MaxSpool, budget: r.opts.ProcessSpool}
	}
	b.spool, b.off = r.c.spool, r.c.spool.end
	w := &spoolWriter{s: r.c.spool}
	var dst io.Writer = w
	var ms *markerSearch
	if len(conds) > 0 {
		ms = newMarkerSearch(conds)
		dst = io.MultiWriter(w, ms)
	}
	if r.copyBuf == nil {
		r.copyBuf = make([]byte, copyBufSize)
	}
	copied, err := io.CopyBuffer(dst, io.LimitReader(src, hdr.Size), r.copyBuf)
	if err == nil && copied < hdr.Size {
		err = io.ErrUnexpectedEOF
	}
	var le *limitError
	switch {
	case errors.As(w.err, &le):
		return nil, &entryError{n: n, name: hdr.Name, err: w.err}
	case w.err != nil:
		return nil, &entryError{n: n, name: hdr.Name, err: &spoolError{fmt.Errorf("spooling to %s: %w", b.spool.f.Name(), w.err)}}
	}
	if err != nil {
		return nil, &entryError{n: n, name: hdr.Name, err: noEOF(err)}
	}
	if ms == nil {
		return nil, nil
	}
	return ms.found, nil
}

// sniff asks the FileMatcher scanners that did not match name by path
// whether they want the file. When one wants to see its first bytes, they
// are read into r.head and src reads them again before the rest of the
// entry. It returns the scanners that want the file (sniffed) and those that
// want it if it holds a marker (conds).
func (r *reader) sniff(tr *tar.Reader, name string, hdr *tar.Header, matched []int) (src io.Reader, sniffed []int, conds []conditional, err error) {
	src = tr
	var asked []int
	mode := hdr.FileInfo().Mode()
	for _, i := range r.fms {
		if slices.Contains(matched, i) {
			continue
		}
		if r.ss[i].(scanner.FileMatcher).MatchFile(name, mode, hdr.Size) {
			asked = append(asked, i)
		}
	}
	if len(asked) == 0 {
		return src, nil, nil, nil
	}
	if r.head == nil {
		r.head = make([]byte, scanner.HeadSize)
	}
	head := r.head[:min(hdr.Size, int64(len(r.head)))]
	if _, err := io.ReadFull(tr, head); err != nil {
		return nil, nil, nil, err
	}
	for _, i := range asked {
		keep, marker := r.ss[i].(scanner.FileMatcher).MatchHead(name, head)
		switch {
		case keep:
			sniffed = append(sniffed, i)
		case len(marker) > 0:
			conds = append(conds, conditional{scanner: i, marker: newMarker(slices.Clone(marker))})
		}
	}
	return io.MultiReader(bytes.NewReader(head), tr), sniffed, conds, nil
}

// drop forgets the last kept blob, b: the next spooled file takes its
// place in the spool.
func (r *reader) drop(b *blob) {
	r.c.blobs = r.c.blobs[:len(r.c.blobs)-1]
	if b.spool != nil {
		b.spool.end = b.off
		return
	}
	r.memUsed -= b.size
}

// markerSearch is an io.Writer that looks for markers in what is written to
// it, across writes.
type markerSearch struct {
	markers []marker
	found   []bool
	left    int    // markers not found yet
	tail    []byte // the last bytes written, up to the longest marker - 1
	scratch []byte
}

func newMarkerSearch(conds []conditional) *markerSearch {
	m := &markerSearch{found: make([]bool, len(conds)), left: len(conds)}
	longest := 0
	for _, c := range conds {
		m.markers = append(m.markers, c.marker)
		longest = max(longest, len(c.marker.b))
	}
	m.tail = make([]byte, 0, longest)
	m.scratch = make([]byte, 0, 2*longest)
	return m
}

// Write never fails.
func (m *markerSearch) Write(p []byte) (int, error) {
	if m.left == 0 {
		return len(p), nil
	}
	for k, mk := range m.markers {
		if m.found[k] {
			continue
		}
		// A marker across the previous write and this one.
		if len(m.tail) > 0 {
			j := append(append(m.scratch[:0], m.tail...), p[:min(len(p), len(mk.b)-1)]...)
			if mk.in(j) {
				m.found[k] = true
				m.left--
				continue
			}
		}
		if mk.in(p) {
			m.found[k] = true
			m.left--
		}
	}
	// Keep the last cap(tail) bytes of everything written so far.
	keep := cap(m.tail)
	if len(p) >= keep {
		m.tail = append(m.tail[:0], p[len(p)-keep:]...)
	} else {
		m.scratch = append(append(m.scratch[:0], m.tail...), p...)
		m.tail = append(m.tail[:0], m.scratch[max(0, len(m.scratch)-keep):]...)
	}
	return len(p), nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (r *reader) hardlink(n int, name string, hdr *tar.Header) error {
	target, ok := cleanPath(hdr.Linkname)
	var b *blob
	if ok {
		b = r.kept[target]
	}
	matched := r.match(name)
	if b != nil {
		for _, i := range b.sniffed {
			if !slices.Contains(matched, i) {
				matched = append(matched, i)
			}
		}
	}
	switch {
	case b != nil:
		return r.add(n, name, b, matched)
	case len(matched) == 0:
	case !ok:
		r.warn("tar entry %d (%q): hardlink target %q escapes the layer root; skipped", n, name, hdr.Linkname)
	default:
		r.warn("tar entry %d (%q): hardlink to %q, whose content was not kept (no scanner matched it, or it is not earlier in this layer); skipped", n, name, hdr.Linkname)
	}
	return nil
}

// stopDecoder closes the decompressor, once. When it returns, no goroutine
// of the decompressor reads br any more (klauspost's zstd Decoder.Close
// drains its output channel, which its goroutines close only after their
// last read of the input), so that Read's goroutine may read the rest of
// the blob from br, in order, after the bytes the decompressor consumed.
func (r *reader) stopDecoder() {
	if r.closeDec != nil {
		r.closeDec()
		r.closeDec = nil
	}
}

// drain reads the rest of the decompressed stream and then the rest of the
// blob, so that the digest covers every byte.
func (r *reader) drain() error {
	if r.format != "tar" {
		_, err := io.Copy(io.Discard, r.dec)
		r.stopDecoder()
		if err != nil {
			if e := r.transient(err); e != nil {
				return e
			}
			if errors.Is(err, ErrLimit) || r.format == "zstd" && !errors.Is(err, zstd.ErrMagicMismatch) {
				// Over a limit, or a zstd frame that fails its checks:
				// the frame the tar ended in (the concurrent decoder
				// delivers a block before its frame's checksum and size
				// are checked), or one after it.
				return r.contentFailure(err)
			}
			// The tar ended cleanly; what follows it is not compressed
			// data (for zstd: not a frame). The digest still covers it,
			// so it is only worth a warning.
			r.warn("%s: after the end of the tar: %v", r.format, err)
		}
	}
	if _, err := io.Copy(io.Discard, r.br); err != nil {
		if e := r.transient(err); e != nil {
			return e
		}
		return fmt.Errorf("layer %s: %w: %w", r.want, ErrRead, err)
	}
	return nil
}

// transient returns the error to report when the failure came from the
// context or the source reader rather than from the content, else nil.
func (r *reader) transient(err error) error {
	n, srcErr, ctxErr := r.src.state()
	if ctxErr != nil {
		return fmt.Errorf("layer %s: after %d bytes of the blob: %w", r.want, n, ctxErr)
	}
	if cerr := r.ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return fmt.Errorf("layer %s: %w", r.want, err)
	}
	if srcErr != nil && r.src.h == nil && errors.Is(srcErr, verify.ErrMismatch) {
		// A Verifier's own check failed: the bytes do not hash to the
		// digest, as when Read hashes them itself.
		return fmt.Errorf("layer %s: %w: %w", r.want, ErrBadLayer, srcErr)
	}
	if srcErr != nil {
		return fmt.Errorf("layer %s: %w after %d bytes: %w", r.want, ErrRead, n, srcErr)
	}
	var se *spoolError
	if errors.As(err, &se) {
		return fmt.Errorf("layer %s: %w", r.want, err)
	}
	return nil
}

// contentFailure turns a failure while reading the layer into the error Read
// returns. A failure of the content is only blamed on the layer once the rest
// of the blob has been read and its digest checked.
func (r *reader) contentFailure(err error) error {
	// First stop the decompressor: what it read ahead is then counted in
	// the source's state, and br is Read's alone.
	r.stopDecoder()
	if e := r.transient(err); e != nil {
		return e
	}
	var cerr error
	var ee *entryError
	switch {
	case r.dec != nil && r.dec.err != nil && (r.format != "tar" || errors.Is(r.dec.err, ErrLimit)):
		// The decompressor failed, whatever the tar reader made of it.
		cerr = fmt.Errorf("%s: %w after %d bytes of the blob", r.format, r.dec.err, r.src.count())
		if errors.As(err, &ee) {
			cerr = fmt.Errorf("%w, in %s", cerr, ee.where())
		}
	case errors.As(err, &ee) && ee.err == io.ErrUnexpectedEOF:
		cerr = fmt.Errorf("%w (the tar stream is truncated)", err)
	case err == errUnsupported:
		cerr = fmt.Errorf("%s: %w", r.format, err)
	default:
		cerr = err
	}
	// Read the rest so that the digest can tell a corrupt copy from a bad
	// layer.
	if _, derr := io.Copy(io.Discard, r.br); derr != nil {
		if e := r.transient(derr); e != nil {
			return fmt.Errorf("%w (while reading the rest of the blob after: %v)", e, cerr)
		}
		return fmt.Errorf("layer %s: %w: %w (while reading the rest of the blob after: %v)", r.want, ErrRead, derr, cerr)
	}
	if err := r.verify(cerr); err != nil {
		return err
	}
	return fmt.Errorf("layer %s: %w: %w", r.want, ErrBadLayer, cerr)
}

// verify compares the digest of the bytes read with the expected one. cause,
// when not nil, is a content error seen before.
func (r *reader) verify(cause error) error {
	if r.src.h == nil {
		// A Verifier for want: it delivered every byte and its EOF, so
		// they matched.
		return nil
	}
	r.src.h.Flush()
	err := r.src.d.Verify()
	if err == nil {
		return nil
	}
	if cause != nil {
		return fmt.Errorf("layer %s: %w: %w; the content was also unreadable: %w", r.want, ErrBadLayer, err, cause)
	}
	return fmt.Errorf("layer %s: %w: %w", r.want, ErrBadLayer, err)
}
