// Package rust finds Rust crates: those built into executables by
// cargo-auditable (the zlib-compressed JSON of the ".dep-v0" ELF section)
// and those locked by the Cargo.lock of an application installed with its
// lock file.
package rust

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/klauspost/compress/zlib"
	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
	"github.com/stevedore-dev/stevedore/scanner/internal/randaccess"
)

// Limits on what is read.
const (
	// MaxBinarySize is the largest executable looked at (the layer
	// reader's own limit on kept files applies too).
	MaxBinarySize = 512 << 20
	// MaxSectionSize bounds the compressed .dep-v0 section (a few KiB
	// in practice: about 60 bytes per crate).
	MaxSectionSize = 4 << 20
	// MaxDepInfoSize bounds the section's JSON once inflated, so that a
	// zlib bomb is stopped early.
	MaxDepInfoSize = 16 << 20
	// MaxLockSize bounds a Cargo.lock (a large application's is a few
	// hundred KiB).
	MaxLockSize = 8 << 20
	// MaxCrates bounds the crates read from one file.
	MaxCrates = 100_000
)

// minBinarySize is the size of an ELF64 header.
const minBinarySize = 64

// sectionName is cargo-auditable's ELF section; its name is in the
// section-name string table, near the end of the file, so the layer reader
// looks for it as a marker.
const sectionName = ".dep-v0"

// Scanner reports the Rust crates of a layer.
//
// Executables: the layer reader offers the scanner every regular file with
// an executable bit of at most MaxBinarySize bytes (MatchFile); an ELF
// executable (MatchHead; not a shared library) is kept if its content holds
// the name of cargo-auditable's section, ".dep-v0". The section (at most
// MaxSectionSize bytes) is inflated (at most MaxDepInfoSize bytes) and its JSON read: each crate of
// kind "runtime" (the default; build-time crates such as proc macros of
// newer cargo-auditable versions are left out, as Trivy, Syft and
// osv-scalibr do), the root crate (the executable's own) included.
//
// Lock files: every Cargo.lock (not those of crate sources downloaded by
// Cargo under .cargo/registry or .cargo/git, nor of Debian's crate
// packages under share/cargo/registry): every [[package]], the application
// itself and its workspace members included, as Trivy and Syft report them.
//
// Each crate is a binary package with Filepath and PackageDB both the
// file's path and a PURL pkg:cargo/NAME@VERSION; a crate from a git
// repository has a vcs_url qualifier ("git+URL@COMMIT"), one from a
// registry other than crates.io a repository_url qualifier.
//
// A file that cannot be used (not ELF, a corrupt section or lock file,
// over a limit, a name or version that is not a valid value) is skipped
// with a warning in Result.Warnings; an ELF file without the section is
// skipped silently.
//
// The zero value is ready to use.
type Scanner struct {
	// TempDir is where a file is copied when its Open does not give
	// random access (the layer reader's files do); "" means
	// os.TempDir().
	TempDir string
}

var (
	_ scanner.Scanner     = Scanner{}
	_ scanner.FileMatcher = Scanner{}
)

// Info identifies the scanner: "rust", version "1", a package scanner,
// file matching version "1".
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "rust", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"}
}

// Match reports whether path is a Cargo.lock that is not in a crate source
// downloaded by Cargo or packaged by Debian.
func (Scanner) Match(p string) bool {
	if path.Base(p) != "Cargo.lock" {
		return false
	}
	s := "/" + p
	return !strings.Contains(s, "/.cargo/registry/") && !strings.Contains(s, "/.cargo/git/") &&
		!strings.Contains(s, "/share/cargo/registry/")
}

// MatchFile reports whether the file could be an executable: regular, with
// an executable bit, of minBinarySize to MaxBinarySize bytes.
func (Scanner) MatchFile(_ string, mode fs.FileMode, size int64) bool {
	return mode.IsRegular() && mode.Perm()&0o111 != 0 && size >= minBinarySize && size <= MaxBinarySize
}

// MatchHead asks for the section's name in an ELF executable, and refuses
// anything else (shared libraries among them: a system's libraries often
// have an executable bit, and holding each of them for the marker search
// would cost every image).
func (Scanner) MatchHead(_ string, head []byte) (bool, []byte) {
	if !executableELF(head) {
		return false, nil
	}
	return false, []byte(sectionName)
}

// ELF header values.
const (
	etExec   = 2
	etDyn    = 3
	ptInterp = 3
)

// executableELF reports whether head starts an ELF executable: ET_EXEC, or
// ET_DYN with a PT_INTERP program header among those within head (a
// position-independent executable; a shared library has no interpreter).
func executableELF(head []byte) bool {
	if len(head) < minBinarySize || !bytes.HasPrefix(head, []byte("\x7fELF")) {
		return false
	}
	var bo binary.ByteOrder
	switch head[5] {
	case 1:
		bo = binary.LittleEndian
	case 2:
		bo = binary.BigEndian
	default:
		return false
	}
	var phoff, phentsize, phnum, minEnt uint64
	switch head[4] {
	case 1:
		phoff, minEnt = uint64(bo.Uint32(head[28:])), 32
		phentsize, phnum = uint64(bo.Uint16(head[42:])), uint64(bo.Uint16(head[44:]))
	case 2:
		phoff, minEnt = bo.Uint64(head[32:]), 56
		phentsize, phnum = uint64(bo.Uint16(head[54:])), uint64(bo.Uint16(head[56:]))
	default:
		return false
	}
	switch bo.Uint16(head[16:]) {
	case etExec:
		return true
	case etDyn:
	default:
		return false
	}
	if phentsize < minEnt {
		return false
	}
	for i := uint64(0); i < phnum; i++ {
		off := phoff + i*phentsize
		if off < phoff || off+phentsize > uint64(len(head)) {
			return false
		}
		if bo.Uint32(head[off:]) == ptInterp {
			return true
		}
	}
	return false
}

// Scan reads the kept files, in path order. Only an error opening a file,
// or the context ending, is returned as an error.
func (s Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	return langpkg.Scan(ctx, "rust", files, 0, func(f scanner.File, _ *langpkg.Warnings) ([]*report.Package, error) {
		var crates []Crate
		var err error
		if path.Base(f.Path()) == "Cargo.lock" {
			crates, err = s.readLock(f)
		} else {
			crates, err = s.readBinary(f)
		}
		if err != nil {
			return nil, langpkg.SkipParse(err)
		}
		pkgs := make([]*report.Package, 0, len(crates))
		for _, c := range crates {
			pkgs = append(pkgs, c.pkg(f.Path()))
		}
		return pkgs, nil
	})
}

// Crate is a crate read from a file.
type Crate struct {
	Name, Version string
	// Source is where Cargo took the crate from: as a lock file writes
	// it ("registry+https://github.com/rust-lang/crates.io-index",
	// "git+https://host/repo.git#commit", "" for a local crate), or as
	// cargo-auditable does ("crates.io", "git", "local", "registry").
	Source string
}

// crates.io's index, as lock files name it.
const (
	cratesIOIndex  = "registry+https://github.com/rust-lang/crates.io-index"
	cratesIOSparse = "sparse+https://index.crates.io/"
)

func (c Crate) pkg(file string) *report.Package {
	var q packageurl.Qualifiers
	switch {
	case strings.HasPrefix(c.Source, "git+"):
		u := strings.TrimPrefix(c.Source, "git+")
		rev := ""
		if i := strings.IndexByte(u, '#'); i >= 0 {
			u, rev = u[:i], u[i+1:]
		}
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		v := "git+" + u
		if rev != "" {
			v += "@" + rev
		}
		q = packageurl.QualifiersFromMap(map[string]string{"vcs_url": v})
	case c.Source == cratesIOIndex || c.Source == cratesIOSparse:
	case strings.HasPrefix(c.Source, "registry+"), strings.HasPrefix(c.Source, "sparse+"):
		_, u, _ := strings.Cut(c.Source, "+")
		q = packageurl.QualifiersFromMap(map[string]string{"repository_url": u})
	}
	purl := packageurl.NewPackageURL(packageurl.TypeCargo, "", c.Name, c.Version, q, "").ToString()
	return langpkg.Package(c.Name, c.Version, file, purl)
}

// ParseError is a file that cannot be used: it is skipped, the layer is not
// failed.
type ParseError = langpkg.ParseError

// readBinary reads the crates of a cargo-auditable executable; none, and no
// error, for an ELF file without the section.
func (s Scanner) readBinary(f scanner.File) ([]Crate, error) {
	if f.Size() > MaxBinarySize {
		return nil, &ParseError{Reason: fmt.Sprintf("%d bytes, more than the limit of %d", f.Size(), MaxBinarySize)}
	}
	ra, err := randaccess.Open(f, MaxBinarySize, s.TempDir)
	if errors.Is(err, randaccess.ErrTooLarge) {
		return nil, &ParseError{Reason: "reading", Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("rust: %w", err)
	}
	defer ra.Close()
	ef, err := elf.NewFile(io.NewSectionReader(ra, 0, ra.Size))
	if err != nil {
		return nil, &ParseError{Reason: "not a readable ELF file", Err: err}
	}
	defer ef.Close()
	sec := ef.Section(sectionName)
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return nil, nil // the marker was elsewhere: not cargo-auditable
	}
	if sec.Size > MaxSectionSize {
		return nil, &ParseError{Reason: fmt.Sprintf("section %s: %d bytes, more than the limit of %d", sectionName, sec.Size, MaxSectionSize)}
	}
	return ParseDepInfo(sec.Open())
}

// ParseDepInfo reads cargo-auditable's dependency information: zlib-
// compressed JSON, {"packages": [{"name", "version", "source", "kind",
// "root", "dependencies"}]}, inflated to at most MaxDepInfoSize bytes. It
// returns the crates of kind "runtime" (the default kind). A content
// problem is a *ParseError.
func ParseDepInfo(r io.Reader) ([]Crate, error) {
	zr, err := zlib.NewReader(r)
	if err != nil {
		return nil, &ParseError{Reason: "section " + sectionName + ": not zlib data", Err: err}
	}
	defer zr.Close()
	lr := limitio.NewReader(zr, MaxDepInfoSize)
	var info struct {
		Packages []struct {
			Name    string  `json:"name"`
			Version string  `json:"version"`
			Source  string  `json:"source"`
			Kind    *string `json:"kind"`
		} `json:"packages"`
	}
	dec := json.NewDecoder(lr)
	if err := dec.Decode(&info); err != nil {
		if lr.Exceeded {
			return nil, &ParseError{Reason: fmt.Sprintf("section %s: more than %d bytes inflated", sectionName, MaxDepInfoSize)}
		}
		return nil, &ParseError{Reason: "section " + sectionName + ": JSON", Err: err}
	}
	if len(info.Packages) > MaxCrates {
		return nil, &ParseError{Reason: fmt.Sprintf("%d crates, more than the limit of %d", len(info.Packages), MaxCrates)}
	}
	var out []Crate
	for i, p := range info.Packages {
		if p.Kind != nil && *p.Kind != "runtime" {
			continue
		}
		c, err := crate(p.Name, p.Version, p.Source)
		if err != nil {
			return nil, &ParseError{Reason: fmt.Sprintf("section %s: package %d", sectionName, i), Err: err}
		}
		out = append(out, c)
	}
	return out, nil
}

func crate(name, version, source string) (Crate, error) {
	n, err := langpkg.Value(name)
	if err != nil {
		return Crate{}, fmt.Errorf("name: %w", err)
	}
	v, err := langpkg.Value(version)
	if err != nil {
		return Crate{}, fmt.Errorf("crate %s: version: %w", n, err)
	}
	if len(source) > langpkg.MaxValueLen {
		return Crate{}, fmt.Errorf("crate %s: source of %d bytes", n, len(source))
	}
	return Crate{Name: n, Version: v, Source: source}, nil
}

// readLock reads the crates of a Cargo.lock.
func (Scanner) readLock(f scanner.File) ([]Crate, error) {
	b, err := langpkg.ReadAll("rust", f, MaxLockSize)
	if err != nil {
		return nil, err
	}
	return ParseLock(b)
}

// ParseLock reads a Cargo.lock (any version) and returns its packages. A
// content problem is a *ParseError.
func ParseLock(b []byte) ([]Crate, error) {
	var lock struct {
		Package []struct {
			Name    string `toml:"name"`
			Version string `toml:"version"`
			Source  string `toml:"source"`
		} `toml:"package"`
	}
	if _, err := toml.Decode(string(b), &lock); err != nil {
		return nil, &ParseError{Reason: "not a Cargo.lock", Err: err}
	}
	if len(lock.Package) > MaxCrates {
		return nil, &ParseError{Reason: fmt.Sprintf("%d packages, more than the limit of %d", len(lock.Package), MaxCrates)}
	}
	out := make([]Crate, 0, len(lock.Package))
	for i, p := range lock.Package {
		c, err := crate(p.Name, p.Version, p.Source)
		if err != nil {
			return nil, &ParseError{Reason: fmt.Sprintf("[[package]] %d", i+1), Err: err}
		}
		out = append(out, c)
	}
	return out, nil
}
