// Package gobinary finds Go executables wherever they are in a layer and
// reports the modules they were built from, read from the build information
// the Go linker embeds (debug/buildinfo): the main module, every dependency,
// and the Go toolchain as the "stdlib" package.
package gobinary

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"runtime/debug"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"
	"golang.org/x/mod/module"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/internal/randaccess"
)

// MaxFileSize is the largest executable looked at. The layer reader's own
// limit on kept files (layer.Options.MaxFileSize) applies too.
const MaxFileSize = 512 << 20

// minFileSize is the size of an ELF64 header: nothing smaller is an
// executable.
const minFileSize = 64

// buildInfoMagic starts the build information blob in a Go binary's data.
var buildInfoMagic = []byte("\xff Go buildinf:")

// Scanner reports the Go modules built into the Go executables of a layer.
//
// Go binaries can be anywhere, whatever their mode (a shared library built
// with -buildmode=c-shared is installed 0644), so the scanner is a
// scanner.FileMatcher: the layer reader offers it every regular file of
// minFileSize to MaxFileSize bytes (MatchFile), then shows it the file's
// first bytes (MatchHead), without reading the rest of a file it refuses.
// An ELF file of any type (executable, PIE, shared library) that carries the
// Go build ID note (which the Go linker puts in the first page) is kept; an
// ELF executable without it (a binary linked with -buildid=, or any C
// program), a PE file and a (thin) Mach-O file are kept only if their
// content holds the build-information marker, which the layer reader checks
// while reading it; anything else (text, a C shared library, a relocatable
// object) is skipped unread.
//
// For each Go binary, every package is a binary package with Filepath and
// PackageDB both the binary's path, and a pkg:golang PURL:
//   - the main module, with its version; a "(devel)" version (a build from
//     a checkout) is replaced by one set with -ldflags "-X
//     pkg.version=v1.2.3" when the build settings record one, else kept as
//     "(devel)" (with no version in the PURL), else replaced by the
//     pseudo-version of the commit it was built from (vcs.revision and
//     vcs.time, "+dirty" when vcs.modified is true, as the go command
//     stamps builds since Go 1.24); its PURL carries the build's vcs
//     settings, when recorded, as qualifiers named as the go command names
//     them ("vcs", "vcs.revision", "vcs.time", "vcs.modified"); a binary
//     built from files ("command-line-arguments") has no main module;
//   - each dependency, as it was built: a replacement by another module
//     gives that module's path and version, a replacement by a local
//     directory keeps the required path and version;
//   - "stdlib", versioned with the toolchain ("go1.22.1", without the
//     GOEXPERIMENT suffix; PURL version "1.22.1").
//
// A file that is not a Go executable is skipped silently; a Go executable
// whose build information cannot be read is skipped with a warning.
//
// The zero value is ready to use.
type Scanner struct {
	// TempDir is where a file is copied when its Open does not give
	// random access (not the case for the layer reader's files); "" means
	// os.TempDir().
	TempDir string
}

var (
	_ scanner.Scanner     = Scanner{}
	_ scanner.FileMatcher = Scanner{}
)

// Info identifies the scanner: "gobinary", version "2", a package scanner.
//
// Version 2 reads Go binaries whatever their mode (c-shared libraries), PE
// and Mach-O binaries, and the vcs build settings.
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "gobinary", Version: "2", Kind: scanner.KindPackage}
}

// Match is false: the scanner finds its files by mode and content
// (MatchFile, MatchHead), not by path.
func (Scanner) Match(string) bool { return false }

// MatchFile reports whether the file could be a binary: regular, of
// minFileSize to MaxFileSize bytes, whatever its permission bits.
func (Scanner) MatchFile(_ string, mode fs.FileMode, size int64) bool {
	return mode.IsRegular() && size >= minFileSize && size <= MaxFileSize
}

// MatchHead keeps an ELF file whose first bytes hold the Go build ID note,
// asks for the build-information marker in an ELF executable without it
// and in a PE or Mach-O file, and refuses anything else.
func (Scanner) MatchHead(_ string, head []byte) (bool, []byte) {
	if isPE(head) || isMachO(head) {
		return false, buildInfoMagic
	}
	e, ok := parseELFHead(head)
	switch {
	case !ok:
		return false, nil
	case e.goNote:
		return true, nil
	case e.executable:
		return false, buildInfoMagic
	}
	return false, nil
}

// isPE reports whether head starts a PE file: the MZ header, whose
// e_lfanew points, within head, at the "PE\0\0" signature.
func isPE(head []byte) bool {
	if len(head) < 64 || head[0] != 'M' || head[1] != 'Z' {
		return false
	}
	off := uint64(binary.LittleEndian.Uint32(head[60:]))
	return off <= uint64(len(head))-4 && string(head[off:off+4]) == "PE\x00\x00"
}

// isMachO reports whether head starts a thin Mach-O file (either byte
// order, 32 or 64 bits). Universal ("fat") files are not looked at: their
// magic is also a Java class file's.
func isMachO(head []byte) bool {
	if len(head) < 28 {
		return false
	}
	switch binary.BigEndian.Uint32(head) {
	case 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe:
		return true
	}
	return false
}

// elfHead is what the first bytes of an ELF file tell.
type elfHead struct {
	// executable: ET_EXEC, or ET_DYN with a PT_INTERP (a PIE; a shared
	// library has no interpreter).
	executable bool
	// goNote: a PT_NOTE segment in the head holds the Go build ID note
	// (name "Go", type 4).
	goNote bool
}

const (
	etExec   = 2
	etDyn    = 3
	ptInterp = 3
	ptNote   = 4
	// noteGoBuildID is the type of the Go build ID ELF note.
	noteGoBuildID = 4
)

// parseELFHead reads the ELF header and the program headers that lie within
// head. It reports false when head does not start with an ELF header.
func parseELFHead(head []byte) (elfHead, bool) {
	var e elfHead
	if len(head) < 52 || !bytes.HasPrefix(head, []byte("\x7fELF")) {
		return e, false
	}
	var bo binary.ByteOrder
	switch head[5] {
	case 1:
		bo = binary.LittleEndian
	case 2:
		bo = binary.BigEndian
	default:
		return e, false
	}
	var phoff, phentsize, phnum uint64
	is64 := false
	switch head[4] {
	case 1:
		phoff = uint64(bo.Uint32(head[28:]))
		phentsize, phnum = uint64(bo.Uint16(head[42:])), uint64(bo.Uint16(head[44:]))
	case 2:
		if len(head) < 64 {
			return e, false
		}
		is64 = true
		phoff = bo.Uint64(head[32:])
		phentsize, phnum = uint64(bo.Uint16(head[54:])), uint64(bo.Uint16(head[56:]))
	default:
		return e, false
	}
	typ := bo.Uint16(head[16:])
	interp := false
	minEnt := uint64(32)
	if is64 {
		minEnt = 56
	}
	if phentsize >= minEnt {
		for i := uint64(0); i < phnum; i++ {
			off := phoff + i*phentsize
			if off < phoff || off+phentsize > uint64(len(head)) {
				break // beyond the head (or overflowing)
			}
			ph := head[off : off+phentsize]
			var pOff, pSize, pAlign uint64
			if is64 {
				pOff, pSize, pAlign = bo.Uint64(ph[8:]), bo.Uint64(ph[32:]), bo.Uint64(ph[48:])
			} else {
				pOff, pSize, pAlign = uint64(bo.Uint32(ph[4:])), uint64(bo.Uint32(ph[16:])), uint64(bo.Uint32(ph[28:]))
			}
			switch bo.Uint32(ph) {
			case ptInterp:
				interp = true
			case ptNote:
				if pOff < uint64(len(head)) && pSize <= uint64(len(head))-pOff && hasGoNote(head[pOff:pOff+pSize], bo, pAlign) {
					e.goNote = true
				}
			}
		}
	}
	e.executable = typ == etExec || (typ == etDyn && interp)
	return e, true
}

// hasGoNote reports whether a PT_NOTE segment's data holds the Go build ID
// note.
func hasGoNote(b []byte, bo binary.ByteOrder, align uint64) bool {
	pad := func(n uint64) uint64 {
		if align == 8 {
			return (n + 7) &^ 7
		}
		return (n + 3) &^ 3
	}
	for len(b) >= 12 {
		namesz, descsz, typ := uint64(bo.Uint32(b)), uint64(bo.Uint32(b[4:])), bo.Uint32(b[8:])
		b = b[12:]
		if pad(namesz) > uint64(len(b)) {
			return false
		}
		name := b[:namesz]
		b = b[pad(namesz):]
		if typ == noteGoBuildID && string(bytes.TrimRight(name, "\x00")) == "Go" {
			return true
		}
		if pad(descsz) > uint64(len(b)) {
			return false
		}
		b = b[pad(descsz):]
	}
	return false
}

// Scan reads the build information of the kept files, in path order. Only
// an error opening a file, or the context ending, is returned as an error.
func (s Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	return langpkg.Scan(ctx, "gobinary", files, MaxFileSize, s.read)
}

// read reads the build information of one file: a file that is not a Go
// executable is passed over quietly, a damaged one skipped with a warning.
func (s Scanner) read(f scanner.File, _ *langpkg.Warnings) ([]*report.Package, error) {
	ra, err := randaccess.Open(f, MaxFileSize, s.TempDir)
	if errors.Is(err, randaccess.ErrTooLarge) {
		return nil, langpkg.Skip(err)
	}
	if err != nil {
		return nil, fmt.Errorf("gobinary: %w", err)
	}
	bi, err := buildinfo.Read(ra)
	ra.Close()
	if err != nil {
		if notGo(err) {
			return nil, nil
		}
		return nil, langpkg.Skip(fmt.Errorf("reading the Go build information: %w", err))
	}
	pkgs, err := packages(bi, f.Path())
	if err != nil {
		return nil, langpkg.Skip(err)
	}
	return pkgs, nil
}

// notGo reports whether a debug/buildinfo error means "not a Go executable"
// (or not an executable at all) rather than a damaged one. The package does
// not export these errors.
func notGo(err error) bool {
	switch err.Error() {
	case "not a Go executable", "unrecognized file format":
		return true
	}
	return false
}

// packages turns build information into packages.
func packages(bi *debug.BuildInfo, path string) ([]*report.Package, error) {
	goVersion, _, _ := strings.Cut(bi.GoVersion, " ") // "go1.22.1 X:loopvar"
	goVersion, err := langpkg.Value(goVersion)
	if err != nil {
		return nil, fmt.Errorf("toolchain version: %w", err)
	}
	var out []*report.Package
	add := func(name, version string, q packageurl.Qualifiers) error {
		n, err := langpkg.Value(name)
		if err != nil {
			return fmt.Errorf("module path: %w", err)
		}
		v, err := langpkg.Value(version)
		if err != nil {
			return fmt.Errorf("module %s: version: %w", n, err)
		}
		out = append(out, newPackage(n, v, path, q))
		return nil
	}
	if bi.Main.Path != "" && bi.Main.Path != "command-line-arguments" {
		version := bi.Main.Version
		if version == "" || version == "(devel)" {
			version = "(devel)"
			if v := ldflagsVersion(bi); v != "" {
				version = v
			} else if v := vcsPseudoVersion(bi); v != "" {
				version = v
			}
		}
		if err := add(bi.Main.Path, version, vcsQualifiers(bi)); err != nil {
			return nil, err
		}
	}
	for _, d := range bi.Deps {
		if d == nil {
			continue
		}
		p, v := d.Path, d.Version
		if d.Replace != nil && d.Replace.Version != "" {
			p, v = d.Replace.Path, d.Replace.Version
		}
		if err := add(p, v, nil); err != nil {
			return nil, err
		}
	}
	out = append(out, newPackage("stdlib", goVersion, path, nil))
	return out, nil
}

// vcsKeys are the build settings of the version control checkout a binary
// was built from, as the go command records them (and names the PURL
// qualifiers that carry them).
var vcsKeys = []string{"vcs", "vcs.revision", "vcs.time", "vcs.modified"}

// vcsQualifiers returns the vcs build settings that are present and valid,
// as PURL qualifiers (sorted by key, as the PURL specification wants).
func vcsQualifiers(bi *debug.BuildInfo) packageurl.Qualifiers {
	var q packageurl.Qualifiers
	for _, k := range vcsKeys {
		v := setting(bi, k)
		if v == "" {
			continue
		}
		if _, err := langpkg.Value(v); err != nil {
			continue
		}
		q = append(q, packageurl.Qualifier{Key: k, Value: v})
	}
	return q
}

// setting returns the value of the build setting key, "" when absent.
func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// vcsPseudoVersion returns the pseudo-version of the commit a "(devel)"
// build was made from (v0.0.0-yyyymmddhhmmss-abcdefabcdef, with "+dirty"
// when the checkout was modified), as the go command itself stamps a
// build's main module since Go 1.24; "" when vcs.revision or vcs.time is
// missing or malformed.
func vcsPseudoVersion(bi *debug.BuildInfo) string {
	rev, tm := setting(bi, "vcs.revision"), setting(bi, "vcs.time")
	if len(rev) < 12 || tm == "" {
		return ""
	}
	for _, c := range rev {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	t, err := time.Parse(time.RFC3339Nano, tm)
	if err != nil {
		return ""
	}
	v := module.PseudoVersion("", "", t, rev[:12])
	if setting(bi, "vcs.modified") == "true" {
		v += "+dirty"
	}
	return v
}

func newPackage(name, version, path string, q packageurl.Qualifiers) *report.Package {
	ns, n := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		ns, n = name[:i], name[i+1:]
	}
	pv := version
	switch {
	case name == "stdlib":
		pv = strings.TrimPrefix(version, "go")
	case version == "(devel)":
		pv = ""
	}
	purl := packageurl.NewPackageURL(packageurl.TypeGolang, ns, n, pv, q, "").ToString()
	return langpkg.Package(name, version, path, purl)
}

// ldflagsVersion returns the version set with -ldflags "-X key=value" for a
// key naming a version variable ("main.version", ".../version.Version",
// "main.ver"), preferring the main package's, when the value looks like a
// version (a digit, or "v" and a digit, first). It returns "" when there is
// none.
func ldflagsVersion(bi *debug.BuildInfo) string {
	var flags string
	for _, s := range bi.Settings {
		if s.Key == "-ldflags" {
			flags = s.Value
		}
	}
	var best string
	f := strings.Fields(flags)
	for i := 0; i < len(f); i++ {
		var kv string
		switch {
		case f[i] == "-X" || f[i] == "--X":
			if i+1 < len(f) {
				i++
				kv = f[i]
			}
		case strings.HasPrefix(f[i], "-X="):
			kv = f[i][len("-X="):]
		case strings.HasPrefix(f[i], "--X="):
			kv = f[i][len("--X="):]
		}
		kv = strings.Trim(kv, `"'`)
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !looksLikeVersion(v) {
			continue
		}
		lk := strings.ToLower(k)
		if !strings.HasSuffix(lk, ".version") && !strings.HasSuffix(lk, ".ver") {
			continue
		}
		if strings.HasPrefix(lk, "main.") {
			return v
		}
		if best == "" {
			best = v
		}
	}
	return best
}

func looksLikeVersion(v string) bool {
	v = strings.TrimPrefix(v, "v")
	if v == "" || v[0] < '0' || v[0] > '9' {
		return false
	}
	_, err := langpkg.Value(v)
	return err == nil
}
