package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
)

// sniffer is a test FileMatcher: it wants executable files whose first bytes
// start with "\x7fELF"; those that also hold "NOTE" in their head are kept
// outright, the others only if they contain "MARKER!".
type sniffer struct {
	testScanner

	mu        sync.Mutex
	askedFile []string
	askedHead []string
}

var _ scanner.FileMatcher = (*sniffer)(nil)

func newSniffer() *sniffer {
	return &sniffer{testScanner: testScanner{name: "sniff", match: func(string) bool { return false }}}
}

func (s *sniffer) MatchFile(path string, mode fs.FileMode, size int64) bool {
	s.mu.Lock()
	s.askedFile = append(s.askedFile, path)
	s.mu.Unlock()
	return mode.IsRegular() && mode.Perm()&0o111 != 0
}

func (s *sniffer) MatchHead(path string, head []byte) (bool, []byte) {
	s.mu.Lock()
	s.askedHead = append(s.askedHead, path)
	s.mu.Unlock()
	if !bytes.HasPrefix(head, []byte("\x7fELF")) {
		return false, nil
	}
	if bytes.Contains(head, []byte("NOTE")) {
		return true, nil
	}
	return false, []byte("MARKER!")
}

// fmEntry is a member of a synthetic tar with a mode.
type fmEntry struct {
	name, linkname string
	mode           int64
	body           []byte
}

func makeModeTar(tb testing.TB, es ...fmEntry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.linkname != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, e.linkname, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatal(err)
		}
		if e.linkname == "" {
			if _, err := tw.Write(e.body); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// elfBody is head (starting with the ELF magic), padded with filler to
// size, with marker (if any) at offset at.
func elfBody(head string, size int, marker string, at int) []byte {
	b := bytes.Repeat([]byte{'.'}, size)
	copy(b, "\x7fELF"+head)
	if marker != "" {
		copy(b[at:], marker)
	}
	return b
}

func TestReadFileMatcher(t *testing.T) {
	const hs = scanner.HeadSize
	noted := elfBody("NOTE", 3000, "", 0)
	marked := elfBody("", 3*hs, "MARKER!", 2*hs+5)
	straddle := elfBody("", 3*hs, "MARKER!", hs-3) // across the head and the rest
	unmarked := elfBody("", 3*hs, "", 0)
	short := []byte("\x7fEL")
	blob := makeModeTar(t,
		fmEntry{name: "usr/bin/noted", mode: 0o755, body: noted},
		fmEntry{name: "usr/bin/noted-link", linkname: "usr/bin/noted"},
		fmEntry{name: "usr/bin/marked", mode: 0o755, body: marked},
		fmEntry{name: "usr/bin/straddle", mode: 0o700, body: straddle},
		fmEntry{name: "usr/bin/unmarked", mode: 0o755, body: unmarked},
		fmEntry{name: "usr/bin/unmarked-link", linkname: "usr/bin/unmarked"},
		fmEntry{name: "usr/bin/script", mode: 0o755, body: []byte("#!/bin/sh\necho MARKER!\n")},
		fmEntry{name: "usr/bin/short", mode: 0o755, body: short},
		fmEntry{name: "usr/bin/empty", mode: 0o755},
		fmEntry{name: "usr/lib/libx.so", mode: 0o644, body: noted},
		fmEntry{name: "etc/os-release", mode: 0o644, body: []byte("ID=x\n")},
	)
	want := []fileView{
		{"usr/bin/noted", int64(len(noted)), string(noted)},
		{"usr/bin/noted-link", int64(len(noted)), string(noted)},
		{"usr/bin/marked", int64(len(marked)), string(marked)},
		{"usr/bin/straddle", int64(len(straddle)), string(straddle)},
	}
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"memory", Options{}},
		{"spooled", Options{MaxInMemory: 100}},
		{"total in memory reached", Options{MaxTotalInMemory: hs}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			tc.opts.TempDir = tmp
			sn := newSniffer()
			osScanner := exactly("os", "etc/os-release")
			// A path matcher that also matches one of the files: the
			// sniffer is still asked about it (its own Match refused).
			both := exactly("both", "usr/bin/noted")
			c := mustRead(t, blob, []scanner.Scanner{sn, osScanner, both}, tc.opts)
			if got := viewFiles(t, c.Files[0]); !reflect.DeepEqual(got, want) {
				var names []string
				for _, f := range got {
					names = append(names, f.Path)
				}
				t.Errorf("sniffer kept %q", names)
			}
			if got := viewFiles(t, c.Files[1]); len(got) != 1 || got[0].Body != "ID=x\n" {
				t.Errorf("os scanner got %v", got)
			}
			if got := viewFiles(t, c.Files[2]); len(got) != 1 || got[0].Path != "usr/bin/noted" {
				t.Errorf("path scanner got %v", got)
			}
			wantFile := []string{"usr/bin/noted", "usr/bin/marked", "usr/bin/straddle", "usr/bin/unmarked",
				"usr/bin/script", "usr/bin/short", "usr/bin/empty", "usr/lib/libx.so", "etc/os-release"}
			if !slices.Equal(sn.askedFile, wantFile) {
				t.Errorf("MatchFile asked about %q", sn.askedFile)
			}
			wantHead := wantFile[:7] // not the 0644 files
			if !slices.Equal(sn.askedHead, wantHead) {
				t.Errorf("MatchHead asked about %q", sn.askedHead)
			}
			if len(c.Warnings) != 0 {
				t.Errorf("warnings %q", c.Warnings)
			}
			c.Close()
			if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) != 0 {
				t.Errorf("temp files left: %q", left)
			}
		})
	}
}

// A file wanted only for a marker that is over MaxFileSize is skipped
// without a warning; one kept outright gets the usual warning.
func TestReadFileMatcherMaxFileSize(t *testing.T) {
	blob := makeModeTar(t,
		fmEntry{name: "big-unmarked", mode: 0o755, body: elfBody("", 5000, "", 0)},
		fmEntry{name: "big-noted", mode: 0o755, body: elfBody("NOTE", 5000, "", 0)},
	)
	c := mustRead(t, blob, []scanner.Scanner{newSniffer()}, Options{MaxFileSize: 4096})
	if len(c.Files[0]) != 0 {
		t.Errorf("kept %d files", len(c.Files[0]))
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `"big-noted"`) {
		t.Errorf("warnings %q", c.Warnings)
	}
}

// Executable files the sniffer refuses, and files it wanted for a marker
// they lack, are not kept in memory: reading a layer with two 64 MiB
// executables allocates far less than their size, and the one spooled while
// looking for the marker is removed.
func TestReadFileMatcherNotBuffered(t *testing.T) {
	const big = 64 << 20
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		chunk := make([]byte, 1<<20)
		for _, name := range []string{"usr/bin/not-elf", "usr/bin/elf-unmarked"} {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: big, Mode: 0o755})
			for i := 0; i < big/len(chunk); i++ {
				if i == 0 && name == "usr/bin/elf-unmarked" {
					copy(chunk, "\x7fELF")
				}
				tw.Write(chunk)
				clear(chunk[:4])
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	tmp := t.TempDir()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sn := newSniffer()
	_, err := Read(context.Background(), pr, sha256Digest(nil), []scanner.Scanner{sn}, Options{TempDir: tmp})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v", err)
	}
	if !slices.Equal(sn.askedHead, []string{"usr/bin/not-elf", "usr/bin/elf-unmarked"}) {
		t.Errorf("MatchHead asked about %q", sn.askedHead)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("allocated %d bytes reading past two %d-byte executables", alloc, big)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) != 0 {
		t.Errorf("temp files left: %q", left)
	}
}

// Open gives an io.ReaderAt, whether the file was kept in memory or spooled.
func TestReadOpenReaderAt(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100)
	blob := makeTar(t, entry{name: "a", body: string(body)}, entry{name: "b", body: string(body)})
	tmp := t.TempDir()
	c := mustRead(t, blob, []scanner.Scanner{everything()}, Options{MaxTotalInMemory: 1500, TempDir: tmp})
	if spooled, _ := filepath.Glob(filepath.Join(tmp, "*")); len(spooled) != 1 {
		t.Fatalf("spooled %q, want one file", spooled)
	}
	kinds := map[string]bool{}
	for _, f := range c.Files[0] {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		ra, ok := rc.(io.ReaderAt)
		if !ok {
			t.Fatalf("%s: Open gives a %T, not an io.ReaderAt", f.Path(), rc)
		}
		if _, ok := rc.(io.Seeker); !ok {
			t.Errorf("%s: Open gives a %T, not an io.Seeker", f.Path(), rc)
		}
		_, spooled := rc.(spoolFile)
		kinds[map[bool]string{true: "file", false: "memory"}[spooled]] = true
		p := make([]byte, 10)
		if _, err := ra.ReadAt(p, 995); err != io.EOF || string(p[:5]) != "56789" {
			t.Errorf("%s: ReadAt at the end: %q, %v", f.Path(), p[:5], err)
		}
		if n, err := ra.ReadAt(p, 500); n != 10 || err != nil || string(p) != "0123456789" {
			t.Errorf("%s: ReadAt: %q, %v", f.Path(), p, err)
		}
		rc.Close()
	}
	if !kinds["file"] || !kinds["memory"] {
		t.Errorf("kinds %v, want a spooled file and one in memory", kinds)
	}
}

// markerSearch finds a marker wherever the writes cut it.
func TestMarkerSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	markers := [][]byte{[]byte("\xff Go buildinf:"), []byte("ab"), []byte("x")}
	for iter := 0; iter < 2000; iter++ {
		data := make([]byte, rng.IntN(200))
		for i := range data {
			data[i] = "abcdefgh \xffGo buildinf:"[rng.IntN(21)]
		}
		if rng.IntN(3) == 0 && len(data) > 20 {
			copy(data[rng.IntN(len(data)-15):], markers[0])
		}
		var conds []conditional
		for k, m := range markers {
			conds = append(conds, conditional{scanner: k, marker: newMarker(m)})
		}
		ms := newMarkerSearch(conds)
		for rest := data; len(rest) > 0; {
			n := 1 + rng.IntN(min(len(rest), 20))
			ms.Write(rest[:n])
			rest = rest[n:]
		}
		for k, m := range markers {
			if want := bytes.Contains(data, m); ms.found[k] != want {
				t.Fatalf("data %q, marker %q: found %v, want %v", data, m, ms.found[k], want)
			}
		}
	}
}
