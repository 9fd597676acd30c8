// Package rhelrepo finds the Red Hat repositories (content sets) an image's
// packages came from, in the content manifests Red Hat's build system puts
// in its images: root/buildinfo/content_manifests/*.json, and
// usr/share/buildinfo/*.json in RHCOS-style images.
package rhelrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/stevedore-dev/stevedore/pkg/index"
	"github.com/stevedore-dev/stevedore/pkg/scanners"
	"github.com/stevedore-dev/stevedore/pkg/scanners/internal/limitio"
)

// MaxFileSize is the largest content manifest Scan reads. Real ones, which
// also list the image's packages, are well under 1 MiB.
const MaxFileSize = 16 << 20

// RepositoryKey marks the repositories this scanner reports: named by a Red
// Hat content set, their CPEs come later from the repository-to-CPE mapping
// (pkg/enrichment), loaded ahead of time.
const RepositoryKey = "rhel-cpe-repository"

// Scanner reports one repository per distinct content set named in a
// layer's content manifests ({"content_sets": ["rhel-8-for-x86_64-baseos-rpms",
// ...]}): Name is the content set, Key is RepositoryKey, URI and CPE are
// empty. The CPE is never looked up while scanning.
//
// A content manifest that cannot be read as one (not JSON, not an object,
// content_sets not a list of strings, not UTF-8, over MaxFileSize) is
// skipped with a warning naming it, as Clair skips it: such files are found
// in real images whose build tooling replaced the file (RapidFort writes
// plain text there), and failing the whole report for an unreadable hint
// would leave the image unindexed. Other manifests in the layer still count.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanners.Scanner = Scanner{}

// Info identifies the scanner: "rhel-content-manifest", version "1", a
// repository scanner.
func (Scanner) Info() scanners.Info {
	return scanners.Info{Name: "rhel-content-manifest", Version: "1", Kind: scanners.KindRepository}
}

// Match reports whether p is a .json file directly in
// root/buildinfo/content_manifests/ or usr/share/buildinfo/.
func (Scanner) Match(p string) bool {
	dir, name := path.Split(p)
	return (dir == "root/buildinfo/content_manifests/" || dir == "usr/share/buildinfo/") &&
		strings.HasSuffix(name, ".json") && len(name) > len(".json")
}

// Scan reads the matched manifests, in path order, and returns their
// content sets as repositories, sorted by name.
func (Scanner) Scan(ctx context.Context, files []scanners.File) (*scanners.Result, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b scanners.File) int { return strings.Compare(a.Path(), b.Path()) })
	res := &scanners.Result{}
	seen := map[string]bool{}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("rhel-content-manifest: %w", err)
		}
		sets, err := readFile(f)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("rhel-content-manifest: skipping %s: %v", f.Path(), err))
			continue
		}
		for _, s := range sets {
			if !seen[s] {
				seen[s] = true
				res.Repositories = append(res.Repositories, &index.Repository{Name: s, Key: RepositoryKey})
			}
		}
	}
	slices.SortFunc(res.Repositories, func(a, b *index.Repository) int { return strings.Compare(a.Name, b.Name) })
	return res, nil
}

func readFile(f scanners.File) ([]string, error) {
	if f.Size() > MaxFileSize {
		return nil, fmt.Errorf("size %d bytes exceeds the limit of %d", f.Size(), MaxFileSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	defer rc.Close()
	lr := limitio.NewReader(rc, MaxFileSize)
	data, err := io.ReadAll(lr)
	if err != nil {
		if lr.Exceeded {
			return nil, fmt.Errorf("more than %d bytes", MaxFileSize)
		}
		return nil, fmt.Errorf("reading: %w", err)
	}
	return Parse(data)
}

// Parse returns the content sets of a content manifest: the strings of its
// top-level "content_sets" list, without empty ones, in file order. A
// manifest without the key has none. The error says what is wrong: not
// UTF-8, not a JSON object, content_sets not a list of strings.
func Parse(data []byte) ([]string, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("not valid UTF-8")
	}
	var m struct {
		ContentSets []string `json:"content_sets"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a content manifest (a JSON object with a content_sets list of strings): %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("not a content manifest: data after the JSON object")
	}
	var out []string
	for _, s := range m.ContentSets {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}
