package blobcache_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/layer/blobcache"
	"github.com/stevedore-dev/stevedore/internal/layer/verify"
	"github.com/stevedore-dev/stevedore/report"
)

func blob(n int, seed byte) ([]byte, report.Digest) {
	b := bytes.Repeat([]byte{seed}, n)
	for i := range b {
		b[i] ^= byte(i * 7)
	}
	s := sha256.Sum256(b)
	return b, report.Digest("sha256:" + hex.EncodeToString(s[:]))
}

func open(t *testing.T, dir string, max int64) *blobcache.Cache {
	t.Helper()
	c, err := blobcache.Open(blobcache.Options{Dir: dir, MaxBytes: max, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *blobcache.Cache, d report.Digest) ([]byte, error) {
	t.Helper()
	rc, ok := c.Get(d)
	if !ok {
		return nil, os.ErrNotExist
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// files lists the directory's entries other than the lock.
func files(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if de.Name() != ".lock" {
			out = append(out, de.Name())
		}
	}
	return out
}

func TestPutGet(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	b, d := blob(1000, 1)
	if err := c.Put(d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	got, err := read(t, c, d)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if st := c.Stats(); st.Blobs != 1 || st.Bytes != 1000 {
		t.Fatalf("stats %+v", st)
	}
	if _, ok := c.Get("sha256:" + report.Digest(strings.Repeat("0", 64))); ok {
		t.Fatal("a blob never put was found")
	}
	// Bytes that do not match the digest are not cached.
	_, other := blob(10, 9)
	if err := c.Put(other, bytes.NewReader(b)); err == nil || !strings.Contains(err.Error(), "hash to") {
		t.Fatalf("put with a wrong digest: %v", err)
	}
	if c.Contains(other) || len(files(t, c.Dir())) != 1 {
		t.Fatalf("wrong bytes were kept: %v", files(t, c.Dir()))
	}
}

func TestLRUAndCap(t *testing.T) {
	type step struct {
		op   string // put, get
		blob int
	}
	for _, tc := range []struct {
		name  string
		cap   int64
		steps []step
		want  []int // blobs cached at the end
	}{
		{"fits", 3000, []step{{"put", 0}, {"put", 1}, {"put", 2}}, []int{0, 1, 2}},
		{"oldest evicted", 3000, []step{{"put", 0}, {"put", 1}, {"put", 2}, {"put", 3}}, []int{1, 2, 3}},
		{"a hit makes a blob recent", 3000, []step{{"put", 0}, {"put", 1}, {"put", 2}, {"get", 0}, {"put", 3}}, []int{0, 2, 3}},
		{"two evicted for a large one", 3000, []step{{"put", 0}, {"put", 1}, {"put", 2}, {"put", 4}}, []int{2, 4}},
		{"larger than the cap is not cached", 1500, []step{{"put", 0}, {"put", 4}}, []int{0}},
		{"put again is one entry", 3000, []step{{"put", 0}, {"put", 0}, {"put", 1}}, []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var blobs [][]byte
			var ds []report.Digest
			for i := range 4 {
				b, d := blob(1000, byte(i+1))
				blobs, ds = append(blobs, b), append(ds, d)
			}
			b, d := blob(2000, 5) // blob 4: two slots
			blobs, ds = append(blobs, b), append(ds, d)
			c := open(t, t.TempDir(), tc.cap)
			for _, s := range tc.steps {
				switch s.op {
				case "put":
					err := c.Put(ds[s.blob], bytes.NewReader(blobs[s.blob]))
					if err != nil && !strings.Contains(err.Error(), "larger than") {
						t.Fatal(err)
					}
				case "get":
					if _, err := read(t, c, ds[s.blob]); err != nil {
						t.Fatal(err)
					}
				}
			}
			var total int64
			for i, d := range ds {
				want := false
				for _, w := range tc.want {
					want = want || w == i
				}
				if c.Contains(d) != want {
					t.Errorf("blob %d cached: %v, want %v", i, c.Contains(d), want)
				}
				if _, err := os.Stat(c.Path(d)); (err == nil) != want {
					t.Errorf("blob %d file exists: %v, want %v", i, err == nil, want)
				}
				if want {
					total += int64(len(blobs[i]))
				}
			}
			if st := c.Stats(); st.Bytes != total || st.Bytes > tc.cap || st.Blobs != len(tc.want) {
				t.Errorf("stats %+v, want %d bytes in %d blobs", st, total, len(tc.want))
			}
			if len(files(t, c.Dir())) != len(tc.want) {
				t.Errorf("files %v", files(t, c.Dir()))
			}
		})
	}
}

func TestVerification(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(p string) error
	}{
		{"one byte flipped", func(p string) error {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0xff
			return os.WriteFile(p, b, 0o600)
		}},
		{"truncated", func(p string) error { return os.Truncate(p, 100) }},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }},
		{"bytes appended", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.Write([]byte("more"))
			return f.Close()
		}},
		{"replaced by another blob", func(p string) error {
			b, _ := blob(1000, 7)
			return os.WriteFile(p, b, 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, t.TempDir(), 1<<20)
			b, d := blob(1000, 3)
			if err := c.Put(d, bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
			if err := tc.damage(c.Path(d)); err != nil {
				t.Fatal(err)
			}
			_, err := read(t, c, d)
			if !errors.Is(err, blobcache.ErrCorrupt) || !errors.Is(err, verify.ErrMismatch) {
				t.Fatalf("read of a damaged blob: %v, want ErrCorrupt (a verify.ErrMismatch)", err)
			}
			if c.Contains(d) {
				t.Fatal("the damaged blob is still cached")
			}
			if _, err := os.Stat(c.Path(d)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the damaged file is still there: %v", err)
			}
			// Filled again, it reads clean.
			if err := c.Put(d, bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
			if got, err := read(t, c, d); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("after refill: %d bytes, %v", len(got), err)
			}
		})
	}
}

// slowReader hands out its bytes a few at a time.
type slowReader struct {
	r io.Reader
}

func (s *slowReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), 100)]) }
func (s *slowReader) Close() error               { return nil }

func TestTeeIsAtomic(t *testing.T) {
	b, d := blob(5000, 4)
	for _, tc := range []struct {
		name   string
		src    []byte
		readN  int // bytes read before Close; -1: all
		cached bool
		// mismatch: the last Read fails with verify.ErrMismatch
		// rather than io.EOF (the tee is a verify.Verified).
		mismatch bool
	}{
		{"read to the end", b, -1, true, false},
		{"stopped early", b, 1200, false, false},
		{"nothing read", b, 0, false, false},
		{"wrong bytes", bytes.Repeat([]byte("x"), 5000), -1, false, true},
		{"truncated source", b[:3000], -1, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, t.TempDir(), 1<<20)
			rc := c.Tee(d, int64(len(b)), &slowReader{bytes.NewReader(tc.src)})
			if v, ok := rc.(verify.Verified); !ok || v.VerifiedDigest() != d {
				t.Fatalf("the tee is not a verify.Verified of %s", d)
			}
			var got []byte
			var err error
			if tc.readN < 0 {
				got, err = io.ReadAll(rc)
			} else {
				got, err = io.ReadAll(io.LimitReader(rc, int64(tc.readN)))
				// Mid-stream, nothing is under the digest's name.
				if _, serr := os.Stat(c.Path(d)); !errors.Is(serr, os.ErrNotExist) {
					t.Fatalf("a partial blob is under the digest's name: %v", serr)
				}
			}
			if tc.mismatch != errors.Is(err, verify.ErrMismatch) || !tc.mismatch && err != nil {
				t.Fatalf("err = %v, want a mismatch: %v", err, tc.mismatch)
			}
			if tc.readN < 0 && !bytes.Equal(got, tc.src) {
				t.Fatal("the tee changed the bytes")
			}
			rc.Close()
			if c.Contains(d) != tc.cached {
				t.Fatalf("cached %v, want %v", c.Contains(d), tc.cached)
			}
			want := 0
			if tc.cached {
				want = 1
			}
			if fs := files(t, c.Dir()); len(fs) != want {
				t.Fatalf("files left: %v", fs)
			}
		})
	}
	// A blob larger than the cap is passed through, not cached.
	c := open(t, t.TempDir(), 1000)
	rc := c.Tee(d, int64(len(b)), io.NopCloser(bytes.NewReader(b)))
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, b) || c.Contains(d) {
		t.Fatal("a blob over the cap")
	}
	rc = c.Tee(d, 0, io.NopCloser(bytes.NewReader(b))) // size unknown
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, b) || c.Contains(d) || len(files(t, c.Dir())) != 0 {
		t.Fatal("a blob of unknown size over the cap")
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	c, err := blobcache.Open(blobcache.Options{Dir: dir, MaxBytes: 3000})
	if err != nil {
		t.Fatal(err)
	}
	var ds []report.Digest
	for i := range 3 {
		b, d := blob(1000, byte(10+i))
		if err := c.Put(d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
		// Modification times order the blobs at the next Open.
		old := time.Now().Add(time.Duration(i-10) * time.Minute)
		os.Chtimes(c.Path(d), old, old)
	}
	// A second process cannot use the directory.
	if _, err := blobcache.Open(blobcache.Options{Dir: dir, MaxBytes: 3000}); !errors.Is(err, blobcache.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	c.Close()
	// A crash mid-write left a temporary file; a stranger file is left
	// alone.
	os.WriteFile(filepath.Join(dir, ".tmp-sha256-123"), []byte("half"), 0o600)
	os.WriteFile(filepath.Join(dir, "README"), []byte("mine"), 0o600)

	c = open(t, dir, 2000) // a smaller cap: the oldest goes
	if c.Contains(ds[0]) || !c.Contains(ds[1]) || !c.Contains(ds[2]) {
		t.Fatalf("after reopen: %v %v %v", c.Contains(ds[0]), c.Contains(ds[1]), c.Contains(ds[2]))
	}
	if fs := files(t, dir); len(fs) != 3 || !strings.Contains(fmt.Sprint(fs), "README") {
		t.Fatalf("files %v", fs)
	}
	if _, err := read(t, c, ds[1]); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []blobcache.Options{{Dir: "", MaxBytes: 1}, {Dir: dir + "/x", MaxBytes: 0}} {
		if _, err := blobcache.Open(bad); err == nil {
			t.Errorf("Open(%+v): no error", bad)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c := open(t, t.TempDir(), 8000)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, d := blob(1000, byte(i%5))
			for range 20 {
				if rc, ok := c.Get(d); ok {
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, b) {
						t.Errorf("read: %v", err)
						return
					}
					continue
				}
				rc := c.Tee(d, 1000, io.NopCloser(bytes.NewReader(b)))
				io.Copy(io.Discard, rc)
				rc.Close()
			}
		}()
	}
	wg.Wait()
	if st := c.Stats(); st.Bytes > 8000 || st.Blobs != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBlobsBeingWrittenStayUnderTheCap: blobs written at once write
// temporary files of at most the cap in all; the one that would go past it
// is read to its end by its reader but not cached, and the other is cached
// whole. Blob a is being put (Put, from a pipe that holds it open with 60
// of its bytes written to the cache) while blob b is read through a Tee:
// the order is fixed, not left to goroutines (a Tee hands its bytes to the
// cache on a goroutine of its own, and a blob committed gives its bytes
// back to the cap, so two Tees raced each other).
func TestBlobsBeingWrittenStayUnderTheCap(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 100)
	a, da := blob(61, 1)
	b, db := blob(60, 2)
	pr, pw := io.Pipe()
	put := make(chan error, 1)
	go func() { put <- c.Put(da, pr) }()
	if _, err := pw.Write(a[:60]); err != nil {
		t.Fatal(err)
	}
	// Put reads again only once the 60 bytes are written to the cache.
	if _, err := pw.Write(a[60:]); err != nil {
		t.Fatal(err)
	}
	rb := c.Tee(db, int64(len(b)), io.NopCloser(bytes.NewReader(b)))
	got, err := io.ReadAll(rb)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("read b: %v (the reader must get its bytes whatever the cache does)", err)
	}
	rb.Close()
	var temp int64
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".tmp-") {
			fi, err := de.Info()
			if err != nil {
				t.Fatal(err)
			}
			temp += fi.Size()
		}
	}
	if temp < 60 || temp > 100 {
		t.Errorf("temporary files hold %d bytes, want a's 60 or 61 and no more than the cap of 100", temp)
	}
	pw.Close()
	if err := <-put; err != nil {
		t.Fatalf("put a: %v", err)
	}
	if ca, cb := c.Contains(da), c.Contains(db); !ca || cb {
		t.Errorf("cached a: %v, b: %v; want a only", ca, cb)
	}
	if got := files(t, dir); len(got) != 1 {
		t.Errorf("files %v, want one blob only", got)
	}
}

// TestTeeCommitIsAwaited: a Tee's blob is committed (synced, renamed into
// place) after its reader's io.EOF, off the reader's goroutine; what comes
// after the read waits for that commit: Get serves the whole blob, Stats
// counts it, and Close leaves it under its name with no temporary file.
func TestTeeCommitIsAwaited(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after func(t *testing.T, c *blobcache.Cache, b []byte, d report.Digest)
	}{
		{"get", func(t *testing.T, c *blobcache.Cache, b []byte, d report.Digest) {
			if got, err := read(t, c, d); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("Get right after the read: %d bytes, %v", len(got), err)
			}
		}},
		{"stats", func(t *testing.T, c *blobcache.Cache, b []byte, d report.Digest) {
			if st := c.Stats(); st.Blobs != 1 || st.Bytes != int64(len(b)) {
				t.Fatalf("stats right after the read: %+v", st)
			}
		}},
		{"close", func(t *testing.T, c *blobcache.Cache, b []byte, d report.Digest) {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(c.Path(d))
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("the blob's file after Close: %d bytes, %v", len(got), err)
			}
			if fs := files(t, c.Dir()); len(fs) != 1 {
				t.Fatalf("files after Close: %v", fs)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, t.TempDir(), 1<<20)
			b, d := blob(300<<10, 9)
			rc := c.Tee(d, int64(len(b)), io.NopCloser(bytes.NewReader(b)))
			if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("read through the tee: %v", err)
			}
			rc.Close()
			tc.after(t, c, b, d)
		})
	}
}
