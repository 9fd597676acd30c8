// Package java finds the Java packages in JAR, WAR and EAR archives (and the
// archives nested in them) from the metadata Maven and the JAR format put
// there: META-INF/maven/GROUP/ARTIFACT/pom.properties first, then
// META-INF/MANIFEST.MF and the file name. It never looks anything up on the
// network (no Maven Central search by checksum): what the archive does not
// say is not reported.
package java

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/internal/randaccess"
	"github.com/stevedore-dev/stevedore/scanner/internal/zipdir"
)

// Defaults of the Scanner's limits.
const (
	DefaultMaxDepth          = 4
	DefaultMaxEntries        = 200_000
	DefaultMaxDirectoryBytes = 32 << 20
	DefaultMaxTotalBytes     = 1 << 30
	DefaultMaxMetadataSize   = 1 << 20
	DefaultMaxInMemory       = 4 << 20
	DefaultMaxArchives       = 10_000
	DefaultMaxPackages       = 10_000
	// DefaultMaxFileSize bounds a file copied for random access (the layer
	// reader's files are not copied: they already give it).
	DefaultMaxFileSize = 1 << 30
)

// Scanner reports the Java packages in the archives of a layer.
//
// It reads every file named *.jar, *.war, *.ear, *.par, *.jpi or *.hpi (in
// any case) as a zip archive, and in each:
//
//   - every entry named pom.properties (META-INF/maven/GROUP/ARTIFACT/ in
//     practice) with a groupId, an artifactId and a version is a package:
//     a shaded or fat jar carries those of what it bundles;
//   - when none of them is the archive's own (no artifactId equals the one
//     in the file name, ARTIFACT-VERSION.jar; or there is none), the
//     archive itself is a package: its artifact from the file name (else
//     the manifest's Implementation-Title or Bundle-SymbolicName), its
//     version from the manifest's Implementation-Version, else the file
//     name, else the manifest's Bundle-Version, and a group by the rules
//     of group.go (its Maven or Debian repository path, else manifest
//     fields that agree with the artifact; never the file name alone);
//     without an artifact and a version it is not reported;
//   - every entry that is itself an archive (WEB-INF/lib/*.jar,
//     BOOT-INF/lib/*.jar, ...) is read the same way, down to MaxDepth
//     levels of nesting. An archive stored uncompressed (as Spring Boot
//     stores them) is read in place; a compressed one is inflated in memory
//     up to MaxInMemory bytes, else to a temporary file.
//
// Each package is a binary package named GROUP:ARTIFACT (ARTIFACT alone when
// the group is unknown) with a PURL pkg:maven/GROUP/ARTIFACT@VERSION, and
// Filepath and PackageDB both the path of the layer's file, nested archives
// included: the file is what the OS package manager owns and what a higher
// layer replaces or deletes.
//
// Archives are hostile input. The central directory is bounded (MaxEntries
// records, MaxDirectoryBytes) before archive/zip allocates it; all the bytes
// inflated for one layer file, nested archives and metadata included, are
// bounded by MaxTotalBytes, the number of archives opened by MaxArchives,
// and a metadata entry by MaxMetadataSize. An archive that breaks a limit or
// does not read as a zip is skipped with a warning in Result.Warnings
// (keeping what was found before); it never fails the layer. Only an error
// opening the layer's file, writing a temporary file, or the context ending
// is returned as an error.
//
// The zero value is ready to use; a zero limit means its default.
type Scanner struct {
	// MaxDepth is the deepest nesting of archives read (default 4: the
	// layer's file is depth 0).
	MaxDepth int
	// MaxEntries bounds the central-directory records of one archive
	// (default 200,000).
	MaxEntries int
	// MaxDirectoryBytes bounds the size of one archive's central directory
	// (default 32 MiB).
	MaxDirectoryBytes int64
	// MaxTotalBytes bounds the bytes inflated and the central directories
	// read for one layer file, nested archives included (default 1 GiB).
	MaxTotalBytes int64
	// MaxMetadataSize bounds a pom.properties or MANIFEST.MF (default
	// 1 MiB).
	MaxMetadataSize int64
	// MaxInMemory is the largest compressed nested archive inflated in
	// memory (default 4 MiB); a larger one goes to a temporary file.
	MaxInMemory int64
	// MaxArchives bounds the archives opened for one layer file, nested
	// ones included (default 10,000).
	MaxArchives int
	// MaxPackages bounds the packages reported for one layer file (default
	// 10,000).
	MaxPackages int
	// TempDir is where temporary files go ("" means os.TempDir()).
	TempDir string
}

var _ scanner.Scanner = Scanner{}

func (s Scanner) withDefaults() Scanner {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&s.MaxDepth, DefaultMaxDepth)
	defInt(&s.MaxEntries, DefaultMaxEntries)
	def(&s.MaxDirectoryBytes, DefaultMaxDirectoryBytes)
	def(&s.MaxTotalBytes, DefaultMaxTotalBytes)
	def(&s.MaxMetadataSize, DefaultMaxMetadataSize)
	def(&s.MaxInMemory, DefaultMaxInMemory)
	defInt(&s.MaxArchives, DefaultMaxArchives)
	defInt(&s.MaxPackages, DefaultMaxPackages)
	return s
}

// Info identifies the scanner: "java", version "2", a package scanner.
//
// Version 2 gives a group to archives without pom.properties from their
// Maven or Debian repository path and more manifest fields (group.go).
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "java", Version: "2", Kind: scanner.KindPackage}
}

// Match reports whether path names a Java archive: *.jar, *.war, *.ear,
// *.par, *.jpi or *.hpi, in any case; or a POM of Debian's Maven repository
// (usr/share/maven-repo), whose path gives a jar of usr/share/java its group.
func (Scanner) Match(path string) bool { return isArchive(path) || isDebianPOM(path) }

// Scan reads the matched archives, in path order.
func (s Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	s = s.withDefaults()
	repo := debianRepo{}
	for _, f := range files {
		if isDebianPOM(f.Path()) {
			repo.add(f.Path())
		}
	}
	return langpkg.Scan(ctx, "java", files, 0, func(f scanner.File, warn *langpkg.Warnings) ([]*report.Package, error) {
		if !isArchive(f.Path()) {
			return nil, nil // a POM: its path only names a group (repo)
		}
		return s.read(ctx, f, warn, repo)
	})
}

// read walks one archive and returns the packages found in it; an archive
// that cannot be read whole is reported with a warning, with what was
// found before the error. repo holds the Debian POMs of the layer.
func (s Scanner) read(ctx context.Context, f scanner.File, warn *langpkg.Warnings, repo debianRepo) ([]*report.Package, error) {
	ra, err := randaccess.Open(f, DefaultMaxFileSize, s.TempDir)
	if errors.Is(err, randaccess.ErrTooLarge) {
		return nil, langpkg.Skip(err)
	}
	if err != nil {
		return nil, fmt.Errorf("java: %w", err)
	}
	w := &walker{s: s, ctx: ctx, file: f.Path(), budget: s.MaxTotalBytes, warn: warn, repo: repo, seen: map[[2]string]bool{}}
	err = w.archive(ra, ra.Size, f.Path(), path.Base(f.Path()), 0)
	ra.Close()
	var le *localError
	switch {
	case errors.As(err, &le):
		return nil, fmt.Errorf("java: %s: %w", f.Path(), err)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("java: %w", ctx.Err())
	case err != nil:
		warn.Addf("java: %s: %v; skipped", f.Path(), err)
	}
	return w.pkgs, nil
}

// inflaters pools klauspost/compress's inflaters, about twice as fast as
// compress/flate's (archive/zip still checks each entry's CRC-32).
var inflaters sync.Pool

// newInflater is archive/zip's decompressor for Deflate entries.
func newInflater(r io.Reader) io.ReadCloser {
	if fr, ok := inflaters.Get().(io.ReadCloser); ok {
		if err := fr.(flate.Resetter).Reset(r, nil); err == nil {
			return &pooledInflater{fr}
		}
	}
	return &pooledInflater{flate.NewReader(r)}
}

// pooledInflater returns its inflater to the pool when closed.
type pooledInflater struct{ io.ReadCloser }

func (p *pooledInflater) Close() error {
	if p.ReadCloser == nil {
		return nil
	}
	err := p.ReadCloser.Close()
	inflaters.Put(p.ReadCloser)
	p.ReadCloser = nil
	return err
}

// localError is a failure of this machine (a temporary file), not of the
// archive: Scan returns it.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// errBudget is wrapped when MaxTotalBytes or MaxArchives is reached: the
// rest of the layer file is skipped.
var errBudget = errors.New("limit reached")

// walker reads one layer file and its nested archives.
type walker struct {
	s        Scanner
	ctx      context.Context
	file     string // the layer file's path
	budget   int64  // bytes that may still be inflated
	archives int    // archives opened
	warn     *langpkg.Warnings
	repo     debianRepo // the layer's Debian Maven repository
	pkgs     []*report.Package
	seen     map[[2]string]bool
	full     bool // MaxPackages reached
}

// pom is the identity in a pom.properties.
type pom struct{ group, artifact, version string }

// archive reads the archive r of size bytes. where names it for messages
// ("a.war!WEB-INF/lib/b.jar"), base is its file name.
func (w *walker) archive(r io.ReaderAt, size int64, where, base string, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	w.archives++
	if w.archives > w.s.MaxArchives {
		return fmt.Errorf("%w: more than %d archives", errBudget, w.s.MaxArchives)
	}
	if err := zipdir.Check(r, size, w.s.MaxEntries, w.s.MaxDirectoryBytes); err != nil {
		return err
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("not a readable zip archive: %w", err)
	}
	zr.RegisterDecompressor(zip.Deflate, newInflater)
	// The central directory was read: charge it.
	var dirBytes int64
	for _, f := range zr.File {
		dirBytes += zipdir.RecordLen + int64(len(f.Name)+len(f.Extra)+len(f.Comment))
	}
	if err := w.charge(dirBytes); err != nil {
		return err
	}
	var poms []pom
	var manifest map[string]string
	var nested []*zip.File
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		name := f.Name
		switch {
		case path.Base(name) == "pom.properties":
			data, err := w.readMetadata(f)
			if err != nil {
				w.warn.Addf("java: %s!%s: %v; skipped", where, name, err)
				continue
			}
			p, err := pomOf(ParseProperties(data))
			if err != nil {
				w.warn.Addf("java: %s!%s: %v; skipped", where, name, err)
				continue
			}
			poms = append(poms, p)
		case strings.EqualFold(name, "META-INF/MANIFEST.MF"):
			data, err := w.readMetadata(f)
			if err != nil {
				w.warn.Addf("java: %s!%s: %v; skipped", where, name, err)
				continue
			}
			if manifest == nil {
				manifest = ParseManifest(data)
			}
		case isArchive(name):
			nested = append(nested, f)
		}
	}
	for _, p := range poms {
		w.add(p)
	}
	var pathGroup func(string, string, bool) string
	if depth == 0 && w.repo != nil {
		pathGroup = func(a, v string, versioned bool) string { return w.repo.pathGroup(w.file, a, v, versioned) }
	}
	if p, ok := ownIdentity(base, poms, manifest, pathGroup); ok {
		w.add(p)
	}
	for _, f := range nested {
		if err := w.nested(r, f, where, depth); err != nil {
			var le *localError
			if errors.As(err, &le) || errors.Is(err, errBudget) || w.ctx.Err() != nil {
				return err
			}
			w.warn.Addf("java: %s!%s: %v; skipped", where, f.Name, err)
		}
	}
	return nil
}

// nested reads the archive in entry f of the archive r.
func (w *walker) nested(r io.ReaderAt, f *zip.File, where string, depth int) error {
	inner := where + "!" + f.Name
	if depth+1 > w.s.MaxDepth {
		w.warn.Addf("java: %s: nested more than %d archives deep; skipped", inner, w.s.MaxDepth)
		return nil
	}
	base := path.Base(f.Name)
	if f.Method == zip.Store && f.CompressedSize64 == f.UncompressedSize64 && f.UncompressedSize64 <= 1<<62 {
		// Stored: read it in place.
		off, err := f.DataOffset()
		if err != nil {
			return fmt.Errorf("locating the entry: %w", err)
		}
		return w.archive(io.NewSectionReader(r, off, int64(f.UncompressedSize64)), int64(f.UncompressedSize64), inner, base, depth+1)
	}
	size := f.UncompressedSize64
	if size > uint64(w.budget) {
		return fmt.Errorf("%w: %d bytes to inflate, more than the %d left of the limit of %d per layer file", errBudget, size, w.budget, w.s.MaxTotalBytes)
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("opening the entry: %w", err)
	}
	defer rc.Close()
	if int64(size) <= w.s.MaxInMemory {
		data := make([]byte, size)
		n, err := io.ReadFull(rc, data)
		w.budget -= int64(n)
		if err != nil {
			return fmt.Errorf("inflating the entry: %w", err)
		}
		return w.archive(bytes.NewReader(data), int64(size), inner, base, depth+1)
	}
	tmp, err := os.CreateTemp(w.s.TempDir, "stevedore-jar-*")
	if err != nil {
		return &localError{fmt.Errorf("inflating %s: %w", inner, err)}
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	n, err := io.Copy(tmp, io.LimitReader(rc, int64(size)))
	w.budget -= n
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return &localError{fmt.Errorf("inflating %s to %s: %w", inner, tmp.Name(), err)}
		}
		return fmt.Errorf("inflating the entry: %w", err)
	}
	return w.archive(tmp, n, inner, base, depth+1)
}

// charge takes n bytes from the budget.
func (w *walker) charge(n int64) error {
	if n > w.budget {
		return fmt.Errorf("%w: %d bytes per layer file inflated or read", errBudget, w.s.MaxTotalBytes)
	}
	w.budget -= n
	return nil
}

// readMetadata reads a small entry (pom.properties, MANIFEST.MF).
func (w *walker) readMetadata(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > uint64(w.s.MaxMetadataSize) {
		return nil, fmt.Errorf("%d bytes, more than the limit of %d", f.UncompressedSize64, w.s.MaxMetadataSize)
	}
	if err := w.charge(int64(f.UncompressedSize64)); err != nil {
		return nil, err
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	defer rc.Close()
	// archive/zip fails a read past the size the directory gives.
	data, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if err != nil {
		return nil, fmt.Errorf("inflating: %w", err)
	}
	return data, nil
}

// add records a package, once per (name, version) per layer file.
func (w *walker) add(p pom) {
	name := p.artifact
	if p.group != "" {
		name = p.group + ":" + p.artifact
	}
	k := [2]string{name, p.version}
	if w.seen[k] || w.full {
		return
	}
	if len(w.pkgs) >= w.s.MaxPackages {
		w.full = true
		w.warn.Addf("java: %s: more than %d packages; the rest not reported", w.file, w.s.MaxPackages)
		return
	}
	w.seen[k] = true
	purl := packageurl.NewPackageURL(packageurl.TypeMaven, p.group, p.artifact, p.version, nil, "").ToString()
	w.pkgs = append(w.pkgs, langpkg.Package(name, p.version, w.file, purl))
}

// pomOf checks the identity of a pom.properties.
func pomOf(props map[string]string) (pom, error) {
	var p pom
	var err error
	if p.group, err = langpkg.Value(props["groupId"]); err != nil {
		return pom{}, fmt.Errorf("groupId: %w", err)
	}
	if p.artifact, err = langpkg.Value(props["artifactId"]); err != nil {
		return pom{}, fmt.Errorf("artifactId: %w", err)
	}
	if p.version, err = langpkg.Value(props["version"]); err != nil {
		return pom{}, fmt.Errorf("version: %w", err)
	}
	return p, nil
}

// ownIdentity returns the archive's own identity when no pom.properties
// gives it (see Scanner).
//
// pathGroup, nil for a nested archive, gives the group the layer file's path
// says for an artifact and version (fileVersioned: the file name has a
// version).
func ownIdentity(base string, poms []pom, manifest map[string]string, pathGroup func(artifact, version string, fileVersioned bool) string) (pom, bool) {
	fileArtifact, fileVersion := splitFileName(base)
	if len(poms) > 0 {
		if fileVersion == "" {
			return pom{}, false // cannot tell: the pom.properties are taken as the archive's
		}
		for _, p := range poms {
			if p.artifact == fileArtifact {
				return pom{}, false
			}
		}
	}
	attr := func(k string) string {
		v, err := langpkg.Value(manifest[k])
		if err != nil {
			return ""
		}
		return v
	}
	bsn, _, _ := strings.Cut(manifest["bundle-symbolicname"], ";")
	bsn, _ = langpkg.Value(bsn)
	artifact, _ := langpkg.Value(fileArtifact)
	if fileVersion == "" {
		// A file name without a version ("app.jar") may not be the
		// artifact's; the manifest's title is likelier to be.
		if t := attr("implementation-title"); t != "" {
			artifact = t
		}
	}
	if artifact == "" {
		artifact = attr("implementation-title")
	}
	if artifact == "" {
		artifact = bsn
	}
	version := attr("implementation-version")
	if version == "" {
		version, _ = langpkg.Value(fileVersion)
	}
	if version == "" {
		version = attr("bundle-version") // OSGi's form: 27.0.0.jre for 27.0-jre
	}
	if artifact == "" || version == "" {
		return pom{}, false
	}
	// The group: from the archive's place, else from its manifest (see
	// group.go).
	var group string
	if pathGroup != nil {
		group = pathGroup(artifact, version, fileVersion != "")
	}
	if group == "" {
		group = manifestGroup(manifest, artifact)
	}
	return pom{group: group, artifact: artifact, version: version}, true
}
