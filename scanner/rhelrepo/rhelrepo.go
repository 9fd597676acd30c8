// Package rhelrepo finds the Red Hat repositories an image's packages came
// from, layer by layer, as Clair does: in the content manifests Red Hat's
// build system puts in its images (root/buildinfo/content_manifests/*.json,
// and usr/share/buildinfo/*.json in RHCOS-style and Konflux images), or, in
// a layer without one or whose manifest asks for it, in dnf's history
// database (see scanner/internal/dnf).
package rhelrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/dnf"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
)

// MaxFileSize is the largest content manifest Scan reads. Real ones, which
// also list the image's packages, are well under 1 MiB.
const MaxFileSize = 16 << 20

// RepositoryKey marks the repositories this scanner reads from content
// manifests: named by a Red Hat content set, their CPEs come later from the
// repository-to-CPE mapping (internal/enrich), loaded ahead of time. It is
// rhel.ContentSetKey; the repositories named by dnf repoids have
// rhel.DNFRepoKey.
const RepositoryKey = rhel.ContentSetKey

// Scanner reports the repositories of a layer, from one of two sources,
// chosen as Clair chooses them:
//
//   - the content manifests of the layer ({"content_sets":
//     ["rhel-8-for-x86_64-baseos-rpms", ...]}): one repository per distinct
//     content set, Name the content set, Key RepositoryKey;
//   - dnf's history database of the layer, when no content manifest of the
//     layer could be read or one of them says "from_dnf_hint": true (as
//     Konflux writes them): one repository per distinct repoid of the
//     packages installed (dnf.History.Installed), Name the repoid, Key
//     rhel.DNFRepoKey. The content sets of the manifests are then not
//     reported. The history is dnf5's when the layer has both dnf5's and
//     dnf4's.
//
// URI and CPE are empty: the CPE is never looked up while scanning.
//
// A content manifest that cannot be read as one (not JSON, not an object,
// content_sets not a list of strings, from_dnf_hint not a boolean, not
// UTF-8, over MaxFileSize) is skipped with a warning naming it, as Clair
// skips it: such files are found in real images whose build tooling
// replaced the file (RapidFort writes plain text there), and failing the
// whole report for an unreadable hint would leave the image unindexed.
// Other manifests in the layer still count. A history that cannot be read
// is skipped the same way: the layer then has no repositories.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "rhel-content-manifest", version "2", a
// repository scanner, file matching version "2" (version 1 matched the
// content manifests only).
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "rhel-content-manifest", Version: "2", Kind: scanner.KindRepository, MatchVersion: "2"}
}

// Match reports whether p is a .json file directly in
// root/buildinfo/content_manifests/ or usr/share/buildinfo/, or one of dnf's
// history databases (dnf.DNF4Path, dnf.DNF5Path).
func (Scanner) Match(p string) bool {
	dir, name := path.Split(p)
	manifest := (dir == "root/buildinfo/content_manifests/" || dir == "usr/share/buildinfo/") &&
		strings.HasSuffix(name, ".json") && len(name) > len(".json")
	return manifest || dnf.IsHistory(p)
}

// Scan reads the matched manifests, in path order, then, if they say so,
// the history, and returns the repositories sorted by name.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	res := &scanner.Result{}
	var histories []scanner.File
	manifests, err := limitio.ParseFiles(ctx, "rhel-content-manifest", files, func(_ context.Context, f scanner.File) (*Manifest, error) {
		if dnf.IsHistory(f.Path()) {
			histories = append(histories, f)
			return nil, nil
		}
		m, err := readFile(f)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("rhel-content-manifest: skipping %s: %v", f.Path(), err))
			return nil, nil
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	var sets []*report.Repository
	seen := map[string]bool{}
	read, fromDNF := 0, false
	for _, m := range manifests {
		if m.Value == nil { // a history, or a manifest skipped
			continue
		}
		read++
		fromDNF = fromDNF || m.Value.FromDNFHint
		for _, s := range m.Value.ContentSets {
			if !seen[s] {
				seen[s] = true
				sets = append(sets, &report.Repository{Name: s, Key: RepositoryKey})
			}
		}
	}
	res.Repositories = sets
	if read == 0 || fromDNF {
		res.Repositories = nil
		if h := dnf.Pick(histories); h != nil {
			hist, err := dnf.Read(ctx, h)
			switch {
			case err == nil:
				for _, id := range hist.Installed {
					res.Repositories = append(res.Repositories, &report.Repository{Name: id, Key: rhel.DNFRepoKey})
				}
			case ctx.Err() != nil:
				return nil, fmt.Errorf("rhel-content-manifest: %w", ctx.Err())
			default:
				res.Warnings = append(res.Warnings, fmt.Sprintf("rhel-content-manifest: skipping %v", err))
			}
		}
	}
	slices.SortFunc(res.Repositories, func(a, b *report.Repository) int { return strings.Compare(a.Name, b.Name) })
	return res, nil
}

func readFile(f scanner.File) (*Manifest, error) {
	data, err := limitio.ReadFile(f, MaxFileSize)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Manifest is what Scan reads from a content manifest.
type Manifest struct {
	// ContentSets are the strings of the top-level "content_sets" list,
	// trimmed, without empty ones, in file order.
	ContentSets []string
	// FromDNFHint is the top-level "from_dnf_hint": the repositories are
	// to be read from dnf's history rather than from ContentSets.
	FromDNFHint bool
}

// Parse reads a content manifest. A missing key means no content sets, or
// false. The error says what is wrong: not UTF-8, not a JSON
// object, content_sets not a list of strings, from_dnf_hint not a boolean.
func Parse(data []byte) (*Manifest, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("not valid UTF-8")
	}
	var m struct {
		ContentSets []string `json:"content_sets"`
		FromDNFHint bool     `json:"from_dnf_hint"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a content manifest (a JSON object with a content_sets list of strings): %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("not a content manifest: data after the JSON object")
	}
	out := &Manifest{FromDNFHint: m.FromDNFHint}
	for _, s := range m.ContentSets {
		if s = strings.TrimSpace(s); s != "" {
			out.ContentSets = append(out.ContentSets, s)
		}
	}
	return out, nil
}
