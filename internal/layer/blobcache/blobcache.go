// Package blobcache keeps compressed layer blobs on local disk, named by
// digest, up to a size cap, evicting the least recently used.
//
// Nothing read from the cache is trusted: every read hashes the bytes as
// they stream and, at the end, compares the hash with the digest (with
// internal/layer/verify, as everything that checks a digest). A file
// that does not match (tampered with, or corrupted on disk) makes the read
// fail with ErrCorrupt, is removed, and a warning is logged; the caller
// fetches the blob again.
//
// The cache is filled while a blob streams from the registry to its reader
// (Tee), not by a second download or read. What is written goes to a
// temporary file, is hashed on the way, and only when the blob is complete
// and its digest matches is the file synced and renamed to the digest's
// name (and the directory synced): a crash or an interrupted download never
// leaves a partial file under a digest's name. Temporary files left by a
// crash are removed when the cache is opened. The sync and the rename of a
// Tee's blob run on a goroutine of their own once the reader has had its
// last byte and io.EOF, so that the disk's flush is not on the read's path;
// until they are done the blob is not served (Get and Contains wait for
// them), and Close waits for them too.
//
// One process uses a cache directory at a time (an advisory lock on the
// directory; Open fails with ErrLocked otherwise), because the size
// accounting and the LRU order are kept in memory. The order survives a
// restart approximately: a hit touches the file's modification time, and
// Open orders files by it.
package blobcache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stevedore-dev/stevedore/internal/layer/verify"
	"github.com/stevedore-dev/stevedore/report"
)

// ErrCorrupt is wrapped by the read error of a cached blob whose bytes do
// not match its digest. The file has been removed when it is returned:
// fetch the blob again from its registry.
var ErrCorrupt = errors.New("cached blob does not match its digest")

// ErrLocked is returned by Open when another process uses the directory.
var ErrLocked = errors.New("blob cache directory is in use by another process")

// Options configures a Cache.
type Options struct {
	// Dir is the cache directory, created (mode 0700) when missing.
	Dir string
	// MaxBytes caps the total size of the cached blobs. A blob larger
	// than the cap is not cached.
	MaxBytes int64
	// Logger receives warnings: corrupt files, failed writes (default
	// slog.Default()).
	Logger *slog.Logger
}

// Cache is a directory of blobs named by digest. It is safe for concurrent
// use.
type Cache struct {
	dir  string
	max  int64
	log  *slog.Logger
	lock *os.File

	mu      sync.Mutex
	lru     *list.List // of *entry, most recently used first
	entries map[report.Digest]*list.Element
	size    int64
	// writing is the bytes of the blobs being written (temporary files):
	// at most max, so the directory holds at most twice the cap whatever
	// the number of blobs read at once.
	writing int64
	// committing counts, per digest, the verified blobs of Tees being
	// synced and renamed into place off their reader's goroutine;
	// committed is signalled (on mu) each time one is done.
	committing map[report.Digest]int
	committed  *sync.Cond
	commits    sync.WaitGroup // the goroutines of those commits
}

type entry struct {
	digest report.Digest
	size   int64
}

// Stats are a cache's current figures.
type Stats struct {
	// Blobs and Bytes are what is cached now.
	Blobs int
	Bytes int64
	// MaxBytes is the cap.
	MaxBytes int64
}

const (
	tempPrefix = ".tmp-"
	lockName   = ".lock"
)

var blobName = regexp.MustCompile(`^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})$`)

// Open opens (creating it if needed) the cache in opts.Dir, removes the
// temporary files of interrupted writes, and indexes the blobs there, the
// most recently used first, evicting down to the cap.
func Open(opts Options) (*Cache, error) {
	if opts.Dir == "" {
		return nil, errors.New("open blob cache: no directory")
	}
	if opts.MaxBytes <= 0 {
		return nil, fmt.Errorf("open blob cache %s: size cap %d: want a positive number of bytes", opts.Dir, opts.MaxBytes)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open blob cache: %w", err)
	}
	lock, err := lockDir(filepath.Join(opts.Dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("open blob cache %s: %w", opts.Dir, err)
	}
	c := &Cache{dir: opts.Dir, max: opts.MaxBytes, log: opts.Logger, lock: lock, lru: list.New(), entries: map[report.Digest]*list.Element{},
		committing: map[report.Digest]int{}}
	c.committed = sync.NewCond(&c.mu)
	des, err := os.ReadDir(opts.Dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open blob cache: %w", err)
	}
	type found struct {
		d     report.Digest
		size  int64
		mtime time.Time
	}
	var fs []found
	for _, de := range des {
		n := de.Name()
		if strings.HasPrefix(n, tempPrefix) {
			os.Remove(filepath.Join(opts.Dir, n))
			continue
		}
		m := blobName.FindStringSubmatch(n)
		if m == nil || !de.Type().IsRegular() {
			continue
		}
		d := report.Digest(m[1] + ":" + m[2])
		if _, err := report.ParseDigest(string(d)); err != nil {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		fs = append(fs, found{d, info.Size(), info.ModTime()})
	}
	slices.SortFunc(fs, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	for _, f := range fs {
		c.entries[f.d] = c.lru.PushFront(&entry{f.d, f.size})
		c.size += f.size
	}
	c.mu.Lock()
	c.evictLocked(nil)
	c.mu.Unlock()
	return c, nil
}

// Close waits for the blobs being committed and releases the directory's
// lock. The cache must not be used after.
func (c *Cache) Close() error {
	c.commits.Wait()
	if err := c.lock.Close(); err != nil {
		return fmt.Errorf("close blob cache %s: %w", c.dir, err)
	}
	return nil
}

// Dir returns the cache directory.
func (c *Cache) Dir() string { return c.dir }

// Path returns the file that holds (or would hold) the blob d.
func (c *Cache) Path(d report.Digest) string {
	return filepath.Join(c.dir, d.Algorithm()+"-"+d.Hex())
}

// Stats returns what is cached now, once the blobs being committed are.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.committing) > 0 {
		c.committed.Wait()
	}
	return Stats{Blobs: len(c.entries), Bytes: c.size, MaxBytes: c.max}
}

// Contains reports whether blob d is cached (without verifying it). When d
// is being committed it waits for that to end.
func (c *Cache) Contains(d report.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waitCommitLocked(d)
	_, ok := c.entries[d]
	return ok
}

// Get opens the cached blob d, marking it most recently used; ok is false
// when it is not cached. When d is being committed (synced and renamed into
// place after a Tee) it waits for that to end. Reading the returned blob
// verifies it: see ErrCorrupt.
func (c *Cache) Get(d report.Digest) (rc io.ReadCloser, ok bool) {
	if !supported(d) {
		return nil, false
	}
	c.mu.Lock()
	c.waitCommitLocked(d)
	el, ok := c.entries[d]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	p := c.Path(d)
	f, err := os.Open(p)
	if err != nil {
		// Removed behind the cache's back: forget it.
		c.log.Warn("blob cache: cannot open a cached blob; forgetting it", "digest", d, "error", err)
		c.forget(d)
		return nil, false
	}
	now := time.Now()
	os.Chtimes(p, now, now)
	r, _ := verify.NewReader(f, d) // d's algorithm is supported
	return &verifier{c: c, f: f, d: d, r: r}, true
}

// waitCommitLocked waits, c.mu held, until no blob d is being committed.
func (c *Cache) waitCommitLocked(d report.Digest) {
	for c.committing[d] > 0 {
		c.committed.Wait()
	}
}

// commitLater commits w (a verified blob) on a goroutine of its own: the
// file's sync, its rename into place and the directory's sync.
func (c *Cache) commitLater(w *writer) {
	c.mu.Lock()
	c.committing[w.d]++
	c.commits.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.commits.Done()
		if err := w.commit(); err != nil {
			c.log.Warn("blob cache: blob not cached", "digest", w.d, "error", err)
		}
		c.mu.Lock()
		if c.committing[w.d]--; c.committing[w.d] == 0 {
			delete(c.committing, w.d)
		}
		c.committed.Broadcast()
		c.mu.Unlock()
	}()
}

// Remove evicts blob d, if it is cached (once it is committed, when it is
// being committed).
func (c *Cache) Remove(d report.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waitCommitLocked(d)
	if el, ok := c.entries[d]; ok {
		c.removeLocked(el)
	}
}

func (c *Cache) forget(d report.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[d]; ok {
		e := el.Value.(*entry)
		c.lru.Remove(el)
		delete(c.entries, d)
		c.size -= e.size
	}
}

func (c *Cache) removeLocked(el *list.Element) {
	e := el.Value.(*entry)
	c.lru.Remove(el)
	delete(c.entries, e.digest)
	c.size -= e.size
	if err := os.Remove(c.Path(e.digest)); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("blob cache: remove", "digest", e.digest, "error", err)
	}
}

// evictLocked removes the least recently used blobs until the cache fits
// its cap, sparing keep.
func (c *Cache) evictLocked(keep *list.Element) {
	for c.size > c.max {
		el := c.lru.Back()
		if el == nil {
			return
		}
		if el == keep {
			if el = el.Prev(); el == nil {
				return
			}
		}
		c.removeLocked(el)
	}
}

// add records a blob that was just renamed into place.
func (c *Cache) add(d report.Digest, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[d]; ok {
		e := el.Value.(*entry)
		c.size += size - e.size
		e.size = size
		c.lru.MoveToFront(el)
		c.evictLocked(el)
		return
	}
	el := c.lru.PushFront(&entry{d, size})
	c.entries[d] = el
	c.size += size
	c.evictLocked(el)
}

// corrupt removes the file f, read as blob d, if it is still the one
// under d's name (a fresh copy written meanwhile is kept).
func (c *Cache) corrupt(d report.Digest, f *os.File) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[d]
	if !ok {
		return
	}
	a, err1 := f.Stat()
	b, err2 := os.Stat(c.Path(d))
	if err1 == nil && err2 == nil && !os.SameFile(a, b) {
		return
	}
	c.removeLocked(el)
}

// supported reports whether the cache can hold blob d: a sha256 or sha512
// digest.
func supported(d report.Digest) bool {
	_, err := verify.Hash(d)
	return err == nil
}

// verifier reads a cached blob through a verify.Reader and, when the bytes
// do not match the digest, removes the file.
type verifier struct {
	c   *Cache
	f   *os.File
	d   report.Digest
	r   *verify.Reader
	err error
}

// Read implements io.Reader. At the end of the file it returns io.EOF when
// the bytes match the digest, and an error wrapping ErrCorrupt (and
// verify.ErrMismatch), having removed the file, when they do not.
func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	switch {
	case err == io.EOF:
		v.err = io.EOF
	case errors.Is(err, verify.ErrMismatch):
		got := v.r.Sum()
		v.err = fmt.Errorf("blob cache: %s: %w: the %d bytes of %s hash to %s; removed: %w", v.d, ErrCorrupt, v.r.Size(), v.f.Name(), got, err)
		v.c.log.Warn("blob cache: a cached blob does not match its digest (tampered with or corrupted on disk); removed, it will be fetched again",
			"digest", v.d, "file", v.f.Name(), "bytes", v.r.Size(), "got", got)
		v.c.corrupt(v.d, v.f)
	case err != nil:
		v.err = fmt.Errorf("blob cache: read %s: %w", v.f.Name(), err)
	}
	return n, v.err
}

// Close implements io.Closer.
func (v *verifier) Close() error { return v.f.Close() }

// VerifiedDigest is the digest the reader checks the blob against: its last
// Read fails with ErrCorrupt rather than return io.EOF when they differ
// (layer.Verifier).
func (v *verifier) VerifiedDigest() report.Digest { return v.d }

// Tee returns a reader of src (blob d, of size bytes when size > 0) that
// writes what is read into the cache as well. The blob is cached once src
// has been read to its end and its bytes matched d; a blob larger than the
// cap, a read that stops early, a mismatch, or a write error (a full disk:
// logged) leave the cache as it was. The blob's file is synced and renamed
// into place after the reader's last Read, off its goroutine (see the
// package documentation).
//
// The reader checks the bytes against d (verify.Verified, so that
// layer.Read need not hash them again): its last Read returns io.EOF when
// they matched, and an error wrapping verify.ErrMismatch (not ErrCorrupt:
// the cache's copy is not at fault) when they did not. Errors of the cache
// itself never reach the reader. The hashing and the writing to the cache
// run on a goroutine of their own (verify.Async), off the reader's.
func (c *Cache) Tee(d report.Digest, size int64, src io.ReadCloser) io.ReadCloser {
	if size > c.max || !supported(d) {
		return src
	}
	w, err := c.create(d)
	if err != nil {
		c.log.Warn("blob cache: cannot write; this blob is not cached", "digest", d, "error", err)
		return src
	}
	t := &tee{d: d, src: src, w: w}
	t.async = verify.NewAsync(teeSink{t})
	return t
}

// Put reads r to its end into the cache as blob d, verifying it. It is Tee
// without a reader on the other side.
func (c *Cache) Put(d report.Digest, r io.Reader) error {
	if _, err := verify.Hash(d); err != nil {
		return fmt.Errorf("blob cache: put %s: %w", d, err)
	}
	w, err := c.create(d)
	if err != nil {
		return fmt.Errorf("blob cache: put %s: %w", d, err)
	}
	buf := make([]byte, 256<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := w.write(buf[:n]); err != nil {
				w.abort()
				return fmt.Errorf("blob cache: put %s: %w", d, err)
			}
		}
		if rerr == io.EOF {
			return w.commit()
		}
		if rerr != nil {
			w.abort()
			return fmt.Errorf("blob cache: put %s: read: %w", d, rerr)
		}
	}
}

// writer writes one blob to a temporary file.
type writer struct {
	c *Cache
	d report.Digest
	f *os.File
	h *verify.Digester
	n int64
}

func (c *Cache) create(d report.Digest) (*writer, error) {
	f, err := os.CreateTemp(c.dir, tempPrefix+d.Algorithm()+"-*")
	if err != nil {
		return nil, err
	}
	h, err := verify.New(d)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &writer{c: c, d: d, f: f, h: h}, nil
}

// errTooLarge stops the caching of a blob larger than the cap.
var errTooLarge = errors.New("blob is larger than the cache's cap")

// errBusy stops the caching of a blob while the blobs being written take
// the cap.
var errBusy = errors.New("the blobs being written to the cache already take its cap")

func (w *writer) write(p []byte) error {
	if w.n+int64(len(p)) > w.c.max {
		return fmt.Errorf("%w of %d bytes", errTooLarge, w.c.max)
	}
	w.c.mu.Lock()
	if w.c.writing+int64(len(p)) > w.c.max {
		w.c.mu.Unlock()
		return fmt.Errorf("%w of %d bytes", errBusy, w.c.max)
	}
	w.c.writing += int64(len(p))
	w.c.mu.Unlock()
	if _, err := w.f.Write(p); err != nil {
		w.c.doneWriting(int64(len(p)))
		return err
	}
	w.h.Write(p)
	w.n += int64(len(p))
	return nil
}

// doneWriting gives back n bytes of the cap taken by a blob being written.
func (c *Cache) doneWriting(n int64) {
	c.mu.Lock()
	c.writing -= n
	c.mu.Unlock()
}

func (w *writer) abort() {
	w.c.doneWriting(w.n)
	w.n = 0
	w.f.Close()
	os.Remove(w.f.Name())
}

// commit verifies the blob, syncs it and renames it into place.
func (w *writer) commit() error {
	if err := w.h.Verify(); err != nil {
		n, got := w.n, w.h.Sum()
		w.abort()
		return fmt.Errorf("blob cache: put %s: the %d bytes written hash to %s: not cached: %w", w.d, n, got, err)
	}
	if err := w.f.Sync(); err != nil {
		w.abort()
		return fmt.Errorf("blob cache: put %s: sync: %w", w.d, err)
	}
	w.c.doneWriting(w.n)
	if err := w.f.Close(); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("blob cache: put %s: close: %w", w.d, err)
	}
	if err := os.Rename(w.f.Name(), w.c.Path(w.d)); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("blob cache: put %s: %w", w.d, err)
	}
	if err := syncDir(w.c.dir); err != nil {
		w.c.log.Warn("blob cache: sync directory", "dir", w.c.dir, "error", err)
	}
	w.c.add(w.d, w.n)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// tee is the reader Tee returns.
type tee struct {
	d     report.Digest
	src   io.ReadCloser
	async *verify.Async // hands what is read to teeSink on its goroutine
	// w is touched by the Async's goroutine until async.Flush or Close
	// returns, then by the reader's.
	w       *writer
	failed  bool  // w gave up caching (the bytes are still hashed)
	readErr error // the last Read's error, once src ended
}

// teeSink is what the tee's Async writes to: every byte is hashed, and
// written to the cache file until a write fails.
type teeSink struct{ t *tee }

func (s teeSink) Write(p []byte) (int, error) {
	t := s.t
	if t.failed {
		t.w.h.Write(p)
		return len(p), nil
	}
	if werr := t.w.write(p); werr != nil {
		level := slog.LevelWarn
		if errors.Is(werr, errTooLarge) || errors.Is(werr, errBusy) {
			level = slog.LevelDebug
		}
		t.w.c.log.Log(context.Background(), level, "blob cache: this blob is not cached", "digest", t.w.d, "error", werr)
		t.w.abort()
		t.failed = true
		t.w.h.Write(p) // write hashes only what it wrote
	}
	return len(p), nil
}

func (t *tee) Read(p []byte) (int, error) {
	if t.readErr != nil {
		return 0, t.readErr
	}
	n, err := t.src.Read(p)
	if n > 0 && t.w != nil {
		t.async.Write(p[:n])
	}
	if err == io.EOF && t.w != nil {
		err = t.finish()
		t.readErr = err
	}
	return n, err
}

// finish waits for every byte to be hashed and written, and has the blob
// committed (commitLater) when it matched its digest: it returns io.EOF
// then, and the mismatch otherwise.
func (t *tee) finish() error {
	t.async.Flush()
	w := t.w
	t.w = nil
	if err := w.h.Verify(); err != nil {
		if !t.failed {
			w.abort()
		}
		return fmt.Errorf("blob cache: the blob read for %s: %w", w.d, err)
	}
	if !t.failed {
		w.c.commitLater(w)
	}
	return io.EOF
}

func (t *tee) Close() error {
	if t.w != nil {
		t.async.Close()
		if !t.failed {
			t.w.abort()
		}
		t.w = nil
	}
	return t.src.Close()
}

// VerifiedDigest is the digest the tee checks the blob against
// (verify.Verified).
func (t *tee) VerifiedDigest() report.Digest { return t.d }
