// Package report defines the data Stevedore reads and writes: the manifest
// to index, and the IndexReport that records what is inside it. The JSON
// shapes follow Clair's indexer API (claircore's Manifest and IndexReport) so
// that Clair's clients can read them unchanged.
package report

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// State is the stage an index report is in. The report is stored at each
// transition, so a client polling the API sees progress.
type State string

// The states of the indexer, in order, and the terminal ones.
const (
	StateCheckManifest State = "CheckManifest"
	StateFetchLayers   State = "FetchLayers"
	StateScanLayers    State = "ScanLayers"
	StateCoalesce      State = "Coalesce"
	StateIndexManifest State = "IndexManifest"
	StateIndexFinished State = "IndexFinished"
	// StateIndexPartial is terminal: usable results with a known gap (an
	// enrichment source missing), retried later on a schedule.
	StateIndexPartial State = "IndexPartial"
	StateIndexError   State = "IndexError"
)

// Terminal reports whether no more work happens on a report in state s
// without a new request.
func (s State) Terminal() bool {
	return s == StateIndexFinished || s == StateIndexError || s == StateIndexPartial
}

// Digest is a content digest such as "sha256:<64 hex>".
type Digest string

var digestRE = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)

// ParseDigest validates s as a sha256 or sha512 content digest.
func ParseDigest(s string) (Digest, error) {
	if !digestRE.MatchString(s) {
		return "", fmt.Errorf("invalid digest %q: want sha256:<64 lowercase hex> or sha512:<128 lowercase hex>", s)
	}
	return Digest(s), nil
}

// Algorithm returns the part before the colon ("sha256").
func (d Digest) Algorithm() string { a, _, _ := strings.Cut(string(d), ":"); return a }

// Hex returns the part after the colon.
func (d Digest) Hex() string { _, h, _ := strings.Cut(string(d), ":"); return h }

// String returns the digest as text.
func (d Digest) String() string { return string(d) }

// Manifest names an image by digest and lists its layers, in order, with where
// to fetch them. It is Clair's Manifest.
type Manifest struct {
	Hash   Digest   `json:"hash"`
	Layers []*Layer `json:"layers"`
}

// Layer is one layer of a manifest: its digest, a URI to fetch the blob from,
// and HTTP headers to send (for example Authorization).
type Layer struct {
	Hash    Digest      `json:"hash"`
	URI     string      `json:"uri"`
	Headers http.Header `json:"headers,omitempty"`
	// MediaType, when known, names the blob's compression. Empty means
	// detect it from the bytes.
	MediaType string `json:"media_type,omitempty"`
	// Size, when known, is the blob's size in bytes.
	Size int64 `json:"size,omitempty"`
}

// MaxLayers bounds the number of layers in one manifest.
const MaxLayers = 1024

// Validate checks a manifest that came from outside: digests well formed,
// at least one layer, URIs absolute http(s) URLs that parse, header names
// and values that an HTTP request can carry. The error names the field and
// never quotes a URI or a header value (they may hold credentials).
func (m *Manifest) Validate() error {
	if m == nil {
		return fmt.Errorf("manifest: missing")
	}
	if _, err := ParseDigest(string(m.Hash)); err != nil {
		return fmt.Errorf("manifest hash: %w", err)
	}
	if len(m.Layers) == 0 {
		return fmt.Errorf("manifest %s: no layers", m.Hash)
	}
	if len(m.Layers) > MaxLayers {
		return fmt.Errorf("manifest %s: %d layers, more than the limit of %d", m.Hash, len(m.Layers), MaxLayers)
	}
	for i, l := range m.Layers {
		if l == nil {
			return fmt.Errorf("layers[%d]: missing", i)
		}
		if _, err := ParseDigest(string(l.Hash)); err != nil {
			return fmt.Errorf("layers[%d].hash: %w", i, err)
		}
		if err := validateURI(l.URI); err != nil {
			return fmt.Errorf("layers[%d].uri: %w", i, err)
		}
		if err := validateHeaders(l.Headers); err != nil {
			return fmt.Errorf("layers[%d].headers%w", i, err)
		}
	}
	return nil
}

// validateURI checks that uri is an absolute http(s) URL with a host that
// an HTTP request can be made to. The error never quotes the URI itself,
// which may hold a password.
func validateURI(uri string) error {
	if !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://") {
		return errors.New("not an absolute http(s) URI")
	}
	if i := strings.IndexFunc(uri, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return fmt.Errorf("control character %#02x at byte %d", uri[i], i)
	}
	u, err := url.Parse(uri)
	if err != nil {
		// url.Error quotes the whole URI: keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a valid URI: %w", err)
	}
	if u.Hostname() == "" {
		return errors.New("not a valid URI: no host")
	}
	return nil
}

// validateHeaders checks that every header name is a valid HTTP token and
// every value a valid field value (no CR, LF or other control byte), so a
// request made with them cannot fail or be split. The error names the
// header, never its value, which may be a credential. It starts with the
// header's index ("[Name][0]: ...") to follow the field's name.
func validateHeaders(h http.Header) error {
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("[%q]: not a valid header name", name)
		}
		for j, v := range h[name] {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("[%q][%d]: the value holds a byte not allowed in a header value (CR, LF or another control character)", name, j)
			}
		}
	}
	return nil
}

// Report is Clair's IndexReport: what was found in a manifest. Packages,
// distributions and repositories are keyed by an id local to the report;
// Environments says, per package id, where it was found.
type Report struct {
	Hash          Digest                    `json:"manifest_hash"`
	State         State                     `json:"state"`
	Packages      map[string]*Package       `json:"packages"`
	Distributions map[string]*Distribution  `json:"distributions"`
	Repositories  map[string]*Repository    `json:"repository"`
	Environments  map[string][]*Environment `json:"environments"`
	Success       bool                      `json:"success"`
	Err           string                    `json:"err"`

	// Stevedore's additions; Clair's clients ignore unknown fields.

	// ScannerState is the scanner-set state that made the report.
	ScannerState string `json:"scanner_state,omitempty"`
	// UpdatedAt is when the report was last written.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Partial lists, for an IndexPartial report, what is missing and why.
	Partial []PartialReason `json:"partial,omitempty"`
	// Attempt counts index runs of this manifest for the current request.
	Attempt int `json:"attempt,omitempty"`
	// NextRetry is when a partial report will be retried.
	NextRetry *time.Time `json:"next_retry,omitempty"`
}

// PartialReason names a scanner whose results are incomplete and why.
type PartialReason struct {
	Scanner string `json:"scanner"`
	Reason  string `json:"reason"`
}

// NewReport returns an empty report for a manifest in the given state.
func NewReport(hash Digest, state State) *Report {
	return &Report{
		Hash:          hash,
		State:         state,
		Packages:      map[string]*Package{},
		Distributions: map[string]*Distribution{},
		Repositories:  map[string]*Repository{},
		Environments:  map[string][]*Environment{},
	}
}

// Package is one installed package.
type Package struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Version           string   `json:"version"`
	Kind              string   `json:"kind,omitempty"`
	Source            *Package `json:"source,omitempty"`
	NormalizedVersion string   `json:"normalized_version,omitempty"`
	Module            string   `json:"module,omitempty"`
	Arch              string   `json:"arch,omitempty"`
	CPE               string   `json:"cpe,omitempty"`
	// PURL is the package URL (Stevedore's addition).
	PURL string `json:"purl,omitempty"`

	// PackageDB is the path of the database the package was read from
	// (for example "var/lib/dpkg/status"). It goes in the Environment.
	PackageDB string `json:"-"`
	// RepositoryHint is a scanner's hint for the repository resolver.
	RepositoryHint string `json:"-"`
	// Filepath is the file the package was found in, for file-based
	// ecosystems (a jar, a binary).
	Filepath string `json:"-"`
}

// Package kinds.
const (
	KindBinary = "binary"
	KindSource = "source"
)

// Distribution is the operating system an image is built on.
type Distribution struct {
	ID              string `json:"id"`
	DID             string `json:"did"`
	Name            string `json:"name"`
	Version         string `json:"version"`
	VersionCodeName string `json:"version_code_name"`
	VersionID       string `json:"version_id"`
	Arch            string `json:"arch"`
	CPE             string `json:"cpe"`
	PrettyName      string `json:"pretty_name"`
}

// Repository is where packages came from.
type Repository struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Key  string `json:"key,omitempty"`
	URI  string `json:"uri,omitempty"`
	CPE  string `json:"cpe,omitempty"`
}

// Environment says where a package was found in the image.
type Environment struct {
	PackageDB      string   `json:"package_db"`
	IntroducedIn   Digest   `json:"introduced_in"`
	DistributionID string   `json:"distribution_id"`
	RepositoryIDs  []string `json:"repository_ids"`
}
