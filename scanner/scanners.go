// Package scanner defines what a scanner is: a named, versioned piece of code
// that reads the few files of a layer it asked for and reports what it found.
// Implementations live in subpackages (osrelease, dpkg, apk, ...); Default
// lists the enabled set.
package scanner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/stevedore-dev/stevedore/report"
)

// Kind says what a scanner finds.
type Kind string

// Scanner kinds.
const (
	KindPackage      Kind = "package"
	KindDistribution Kind = "distribution"
	KindRepository   Kind = "repository"
)

// Info identifies a scanner. A change in what a scanner finds for the same
// input must change its Version (a test in scanners/all guards this).
type Info struct {
	Name    string
	Version string
	Kind    Kind
	// MatchVersion, when set, names the version of the scanner's file
	// matching (Match, MatchFile): versions of a scanner with the same
	// MatchVersion are given the same files, so a layer in which one was
	// given none is known to hold nothing for the other, without reading
	// it. A change to what Match selects must change MatchVersion. Empty:
	// every new Version reads every layer again. It is not part of the
	// scanner-set state.
	MatchVersion string
}

// Scanner inspects one layer.
//
// The layer reader walks a layer's tar stream once and calls Match for each
// regular file; the files a scanner matched are handed to Scan after the walk.
// Scan must not touch the network.
type Scanner interface {
	Info() Info
	// Match reports whether the scanner wants the file at path. Paths are
	// clean, relative and slash-separated ("var/lib/dpkg/status").
	Match(path string) bool
	// Scan reports what the matched files contain. Files is empty when the
	// layer had none. A file the scanner cannot parse is an error that names
	// the file; the report for the manifest fails with it.
	Scan(ctx context.Context, files []File) (*Result, error)
}

// File is a file of a layer that a scanner asked for.
type File interface {
	// Path is the file's clean relative path in the layer.
	Path() string
	// Size is the file's size in bytes.
	Size() int64
	// Open returns the file's contents; callers close it. It may be
	// called more than once. The layer reader's files also implement
	// io.ReaderAt and io.Seeker (a section of the layer's spool file, or
	// an in-memory reader): a scanner that needs random access (a zip, an
	// ELF file) should use them when present rather than copy the file.
	Open() (io.ReadCloser, error)
}

// FileMatcher is an optional interface of a Scanner that recognises files by
// what they are rather than by where they are (a Go binary can be anywhere).
// The layer reader asks it about each regular file that the scanner's Match
// refused, cheapest question first, and keeps only the files it wants:
//
//  1. MatchFile, from the tar header alone: path, mode (permission bits)
//     and size;
//  2. for a file MatchFile accepted, MatchHead, with the file's first bytes
//     (HeadSize of them, fewer for a shorter file), read without buffering
//     the rest of the file.
//
// MatchHead answers keep (the scanner wants the file), or a marker: the
// scanner wants the file only if its content contains marker. The layer
// reader then keeps the file while it reads it and drops it at its end if
// the marker was not in it. Neither answer: the file is skipped. MatchHead
// must not keep head after it returns: the buffer is reused.
//
// A hardlink is kept for a FileMatcher when its target, earlier in the same
// layer, was kept for it.
type FileMatcher interface {
	MatchFile(path string, mode fs.FileMode, size int64) bool
	MatchHead(path string, head []byte) (keep bool, marker []byte)
}

// HeadSize is the number of first bytes of a file given to
// FileMatcher.MatchHead (fewer when the file is shorter).
const HeadSize = 16 << 10

// Result is what a scanner found in one layer.
type Result struct {
	Packages      []*report.Package
	Distributions []*report.Distribution
	Repositories  []*report.Repository
	// Warnings are problems that did not stop the scan, each naming the
	// file and the reason: a file skipped (corrupt, over a limit, not
	// valid UTF-8). They are logged, not stored.
	Warnings []string
	// OwnedFiles are files an OS package manager says its packages own
	// and that a language scanner could also report (see
	// scanner/internal/owned): clean relative paths, sorted, no
	// duplicates. The coalescer drops a language package read from one.
	OwnedFiles []string
}

// StateOf hashes the (name, version, kind) of every part that makes a
// report (scanners, enrichers, the coalescer: internal/indexer.State lists
// them) into the string that identifies the set: a report made by another
// state is stale. The order does not matter. It is the only such hash.
func StateOf(infos []Info) string {
	lines := make([]string, len(infos))
	for i, in := range infos {
		lines[i] = in.Name + "\x00" + in.Version + "\x00" + string(in.Kind)
	}
	slices.Sort(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(h[:])
}
