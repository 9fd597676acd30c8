package rust

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zlib"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "rust", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"}, map[string]bool{
		"app/Cargo.lock":         true,
		"Cargo.lock":             true,
		"usr/src/app/Cargo.lock": true,
		"root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde-1.0.0/Cargo.lock": false,
		"root/.cargo/git/checkouts/regex-1/abc/Cargo.lock":                                 false,
		"usr/share/cargo/registry/serde-1.0.0/Cargo.lock":                                  false,
		"app/Cargo.toml":     false,
		"app/Cargo.lock.bak": false,
	})
	s := Scanner{}
	for _, tc := range []struct {
		mode fs.FileMode
		size int64
		want bool
	}{
		{0o755, 1000, true}, {0o644, 1000, false}, {0o755, 10, false},
		{0o755, MaxBinarySize + 1, false}, {fs.ModeSymlink | 0o777, 1000, false},
	} {
		if got := s.MatchFile("usr/bin/x", tc.mode, tc.size); got != tc.want {
			t.Errorf("MatchFile(%v, %d) = %v", tc.mode, tc.size, got)
		}
	}
	elfHead := scannertest.ReadFile(t, filepath.Join("testdata", "trivy_executable_rust"))
	if keep, marker := s.MatchHead("usr/bin/x", elfHead[:scanner.HeadSize]); keep || string(marker) != ".dep-v0" {
		t.Errorf("MatchHead(ELF) = %v, %q", keep, marker)
	}
	if keep, marker := s.MatchHead("usr/bin/x", []byte("#!/bin/sh\n"+strings.Repeat("x", 100))); keep || marker != nil {
		t.Errorf("MatchHead(script) = %v, %q", keep, marker)
	}
	// A shared library (ET_DYN without an interpreter), this machine's
	// libm, is refused; so is a truncated header.
	libs, err := filepath.Glob("/usr/lib/x86_64-linux-gnu/libm.so.6")
	if err != nil || len(libs) == 0 {
		libs, _ = filepath.Glob("/lib*/libm.so.6")
	}
	if len(libs) == 0 {
		t.Fatal("this test needs a shared library, libm.so.6")
	}
	lib := scannertest.ReadFile(t, libs[0])
	if keep, marker := s.MatchHead("usr/lib/libm.so.6", lib[:scanner.HeadSize]); keep || marker != nil {
		t.Errorf("MatchHead(libm) = %v, %q", keep, marker)
	}
	if keep, marker := s.MatchHead("usr/bin/x", elfHead[:80]); keep || marker != nil {
		t.Errorf("MatchHead(truncated) = %v, %q", keep, marker)
	}
}

// binaryCases are the Rust executables of TestFixtures (see testdata/SOURCES.md).
func binaryCases() []scannertest.Testdata {
	return []scannertest.Testdata{
		// Trivy's rust/binary test: the root and its one dependency.
		{File: "trivy_executable_rust", Path: "usr/local/bin/crate_with_features", Want: []string{
			"crate_with_features 0.1.0 pkg:cargo/crate_with_features@0.1.0",
			"library_crate 0.1.0 pkg:cargo/library_crate@0.1.0",
		}},
		// osv-scalibr's cargoauditable test (build dependencies are
		// not marked as such by the cargo-auditable that built it).
		{File: "scalibr_uses_serde_json", Path: "usr/bin/uses_json", Want: []string{
			"itoa 1.0.14 pkg:cargo/itoa@1.0.14",
			"memchr 2.7.4 pkg:cargo/memchr@2.7.4",
			"proc-macro2 1.0.92 pkg:cargo/proc-macro2@1.0.92",
			"quote 1.0.38 pkg:cargo/quote@1.0.38",
			"ryu 1.0.18 pkg:cargo/ryu@1.0.18",
			"serde 1.0.217 pkg:cargo/serde@1.0.217",
			"serde_derive 1.0.217 pkg:cargo/serde_derive@1.0.217",
			"serde_json 1.0.135 pkg:cargo/serde_json@1.0.135",
			"syn 2.0.95 pkg:cargo/syn@2.0.95",
			"unicode-ident 1.0.14 pkg:cargo/unicode-ident@1.0.14",
			"uses_json 0.1.0 pkg:cargo/uses_json@0.1.0",
		}},
		{File: "scalibr_no_deps", Path: "usr/bin/no_deps", Want: []string{"no_deps 0.1.0 pkg:cargo/no_deps@0.1.0"}},
	}
}

// lockfileCases are the Cargo.lock files of TestFixtures.
func lockfileCases() []scannertest.Testdata {
	return []scannertest.Testdata{
		// Trivy's cargo parser tests: every [[package]].
		{File: "trivy_cargo_v3.lock", Path: "app/Cargo.lock", Want: []string{
			"aho-corasick 0.7.20 pkg:cargo/aho-corasick@0.7.20",
			"app 0.1.0 pkg:cargo/app@0.1.0",
			"libc 0.2.140 pkg:cargo/libc@0.2.140",
			"memchr 1.0.2 pkg:cargo/memchr@1.0.2",
			"memchr 2.5.0 pkg:cargo/memchr@2.5.0",
			"regex 1.7.3 pkg:cargo/regex@1.7.3",
			"regex-syntax 0.5.6 pkg:cargo/regex-syntax@0.5.6",
			"regex-syntax 0.6.29 pkg:cargo/regex-syntax@0.6.29",
			"ucd-util 0.1.10 pkg:cargo/ucd-util@0.1.10",
		}},
		{File: "trivy_cargo_normal.lock", Path: "app/Cargo.lock", Want: []string{
			"idna 0.1.5 pkg:cargo/idna@0.1.5",
			"libc 0.2.54 pkg:cargo/libc@0.2.54",
			"matches 0.1.8 pkg:cargo/matches@0.1.8",
			"normal 0.1.0 pkg:cargo/normal@0.1.0",
			"percent-encoding 1.0.1 pkg:cargo/percent-encoding@1.0.1",
			"typemap 0.3.3 pkg:cargo/typemap@0.3.3",
			"unsafe-any 0.4.2 pkg:cargo/unsafe-any@0.4.2",
			"url 1.7.2 pkg:cargo/url@1.7.2",
		}},
		// Syft's parse_cargo_lock tests.
		{File: "syft_Cargo.lock", Path: "app/Cargo.lock", Want: []string{
			"ansi_term 0.12.1 pkg:cargo/ansi_term@0.12.1",
			"errno 0.3.9 pkg:cargo/errno@0.3.9",
			"matches 0.1.8 pkg:cargo/matches@0.1.8",
			"memchr 2.3.3 pkg:cargo/memchr@2.3.3",
			"natord 1.0.9 pkg:cargo/natord@1.0.9",
			"nom 4.2.3 pkg:cargo/nom@4.2.3",
			"schannel 0.1.26 pkg:cargo/schannel@0.1.26",
			"unicode-bidi 0.3.4 pkg:cargo/unicode-bidi@0.3.4",
			"version_check 0.1.5 pkg:cargo/version_check@0.1.5",
			"winapi 0.3.9 pkg:cargo/winapi@0.3.9",
			"winapi-i686-pc-windows-gnu 0.4.0 pkg:cargo/winapi-i686-pc-windows-gnu@0.4.0",
			"winapi-x86_64-pc-windows-gnu 0.4.0 pkg:cargo/winapi-x86_64-pc-windows-gnu@0.4.0",
			"windows-sys 0.52.0 pkg:cargo/windows-sys@0.52.0",
			"windows-sys 0.59.0 pkg:cargo/windows-sys@0.59.0",
		}},
		{File: "syft_Cargo.lock-with-git-deps", Path: "app/Cargo.lock", Want: []string{
			"aho-corasick 1.1.3 pkg:cargo/aho-corasick@1.1.3",
			"hello_world 0.1.0 pkg:cargo/hello_world@0.1.0",
			"memchr 2.7.4 pkg:cargo/memchr@2.7.4",
			"minimal-lexical 0.2.1 pkg:cargo/minimal-lexical@0.2.1",
			"nom 7.1.3 pkg:cargo/nom@7.1.3",
			"nom-regex 0.2.0 pkg:cargo/nom-regex@0.2.0",
			"regex 1.11.1 pkg:cargo/regex@1.11.1",
			"regex 1.11.1 pkg:cargo/regex@1.11.1?vcs_url=git%2Bhttps:%2F%2Fgithub.com%2Frust-lang%2Fregex.git%401a069b9232c607b34c4937122361aa075ef573fa",
			"regex-automata 0.4.9 pkg:cargo/regex-automata@0.4.9",
			"regex-automata 0.4.9 pkg:cargo/regex-automata@0.4.9?vcs_url=git%2Bhttps:%2F%2Fgithub.com%2Frust-lang%2Fregex.git%401a069b9232c607b34c4937122361aa075ef573fa",
			"regex-syntax 0.8.5 pkg:cargo/regex-syntax@0.8.5",
			"regex-syntax 0.8.5 pkg:cargo/regex-syntax@0.8.5?vcs_url=git%2Bhttps:%2F%2Fgithub.com%2Frust-lang%2Fregex.git%401a069b9232c607b34c4937122361aa075ef573fa",
		}},
		// osv-scalibr's cargolock test: a local crate beside a registry one.
		{File: "scalibr_two-packages-with-local.lock", Path: "app/Cargo.lock", Want: []string{
			"addr2line 0.15.2 pkg:cargo/addr2line@0.15.2",
			"local-rust-pkg 0.1.0 pkg:cargo/local-rust-pkg@0.1.0",
		}},
	}
}

// TestFixtures scans upstream projects' test data (see testdata/SOURCES.md)
// and compares with the listings those projects' own tests expect, and
// with python3's tomllib and objcopy + zlib + json over the same files.
func TestFixtures(t *testing.T) {
	scannertest.CheckTestdata(t, Scanner{}, slices.Concat(binaryCases(), lockfileCases()), nil)
}

func deflate(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseDepInfo(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       []Crate
		err        string
	}{
		{"kinds", `{"packages":[{"name":"a","version":"1.0.0","source":"crates.io","kind":"build"},{"name":"b","version":"2.0.0","kind":"runtime","root":true},{"name":"c","version":"3.0.0"}]}`,
			[]Crate{{"b", "2.0.0", ""}, {"c", "3.0.0", ""}}, ""},
		{"empty", `{}`, nil, ""},
		{"bad json", `{"packages":[`, nil, "JSON"},
		{"no version", `{"packages":[{"name":"a"}]}`, nil, "version: empty"},
		{"blank name", `{"packages":[{"name":"a b","version":"1"}]}`, nil, "blanks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDepInfo(bytes.NewReader(deflate(t, []byte(tc.json))))
			if tc.err != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want a ParseError with %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := ParseDepInfo(strings.NewReader("not zlib")); err == nil || !strings.Contains(err.Error(), "not zlib") {
		t.Errorf("not zlib: %v", err)
	}
}

// TestZlibBomb: a section that inflates to 1 GiB is stopped at
// MaxDepInfoSize.
func TestZlibBomb(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		zw := zlib.NewWriter(pw)
		zw.Write([]byte(`{"packages":[{"name":"`))
		chunk := bytes.Repeat([]byte("a"), 1<<20)
		for range 1024 {
			if _, err := zw.Write(chunk); err != nil {
				break
			}
		}
		zw.Close()
		pw.Close()
	}()
	var compressed bytes.Buffer
	if _, err := io.Copy(&compressed, pr); err != nil {
		t.Fatal(err)
	}
	cr := &scannertest.CountingReader{R: bytes.NewReader(compressed.Bytes())}
	_, err := ParseDepInfo(cr)
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("err = %v", err)
	}
	t.Logf("%d compressed bytes, %d read", compressed.Len(), cr.N)
}

// Bad files are skipped with a warning naming them; the others are still
// reported. Only a failure to open or read is an error.
func TestBadInput(t *testing.T) {
	good := scannertest.File("a/Cargo.lock", []byte("[[package]]\nname = \"x\"\nversion = \"1.0.0\"\n"))
	bin := scannertest.ReadFile(t, filepath.Join("testdata", "trivy_executable_rust"))
	truncated := bin[:len(bin)/2] // section headers gone
	scannertest.CheckBadFiles(t, Scanner{}, good, "x", "b/Cargo.lock", []scannertest.BadFile{
		{Name: "not toml", Data: "[[package]\nname=", Warn: "not a Cargo.lock"},
		{Name: "no version", Data: "[[package]]\nname = \"y\"\n", Warn: "version: empty"},
		{Name: "invalid UTF-8", Data: "[[package]]\nname = \"y\xff\"\nversion = \"1\"\n", Warn: "not a Cargo.lock"},
	})
	scannertest.CheckBadFiles(t, Scanner{}, good, "x", "usr/bin/b", []scannertest.BadFile{
		{Name: "not ELF", Data: strings.Repeat("MZ", 100), Warn: "not a readable ELF"},
		{Name: "truncated ELF", Data: string(truncated), Warn: "not a readable ELF"},
	})

	// An ELF file without the section (a C program) is skipped quietly.
	cprog, err := os.ReadFile("/usr/bin/true")
	if err != nil {
		t.Fatalf("this test needs a non-Rust ELF executable, /usr/bin/true: %v", err)
	}
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("usr/bin/true", cprog)})
	if err != nil || len(res.Packages) != 0 || len(res.Warnings) != 0 {
		t.Errorf("C program: %+v, %v", res, err)
	}

	// Over the limit: a warning, the file is not opened.
	big := scannertest.FileFunc("usr/bin/big", MaxBinarySize+1, func() (io.ReadCloser, error) {
		t.Error("usr/bin/big opened")
		return nil, errBroken
	})
	res, err = Scanner{}.Scan(context.Background(), []scanner.File{big})
	if err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "more than the limit") {
		t.Errorf("usr/bin/big over the limit: %+v, %v", res, err)
	}
	// An open error is an error, naming the file.
	unopenable := scannertest.FileFunc("usr/bin/x", 100, func() (io.ReadCloser, error) { return nil, errBroken })
	if _, err := (Scanner{}).Scan(context.Background(), []scanner.File{unopenable}); !errors.Is(err, errBroken) || !strings.Contains(err.Error(), "usr/bin/x") {
		t.Errorf("open error: %v", err)
	}
	// A lock file: over the limit, longer than its size says, unreadable.
	scannertest.CheckSkips(t, scannertest.Skips{Scanner: Scanner{}, Path: "a/Cargo.lock", Limit: MaxLockSize, Valid: []byte("[[package]]\nname = \"x\"\nversion = \"1.0.0\"\n"), Filler: []byte("#")})
}

var errBroken = errors.New("disk on fire")

// depSection returns the .dep-v0 section of an ELF file.
func depSection(b []byte) ([]byte, error) {
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	sec := ef.Section(sectionName)
	if sec == nil {
		return nil, errors.New("no section")
	}
	return sec.Data()
}
