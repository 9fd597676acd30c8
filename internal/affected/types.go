package affected

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Vulnerability is a vulnerability as Clair's notifier sends it (claircore's
// Vulnerability in JSON). Fields Clair sends that the answer's schema does
// not know (Self, Aliases) are ignored.
type Vulnerability struct {
	ID                 string        `json:"id"`
	Updater            string        `json:"updater"`
	Name               string        `json:"name"`
	Description        string        `json:"description"`
	Issued             *time.Time    `json:"issued,omitempty"`
	Links              string        `json:"links"`
	Severity           string        `json:"severity"`
	NormalizedSeverity Severity      `json:"normalized_severity"`
	Package            *Package      `json:"package,omitempty"`
	Dist               *Distribution `json:"distribution,omitempty"`
	Repo               *Repository   `json:"repository,omitempty"`
	FixedInVersion     string        `json:"fixed_in_version"`
	Range              *Range        `json:"range,omitempty"`
	ArchOp             ArchOp        `json:"arch_op,omitempty"`
	// Invert is claircore's untagged Invert: the vulnerability asserts
	// that the packages it names are not vulnerable. It affects nothing
	// and is not echoed.
	Invert bool `json:"Invert,omitempty"`

	// archRE is Package.Arch compiled, for the pattern-match op, once per
	// vulnerability (nil with archErr set: not a valid pattern).
	archRE   *regexp.Regexp
	archErr  error
	archDone bool
}

// archPattern returns the vulnerability's arch pattern, compiled once.
func (v *Vulnerability) archPattern() (*regexp.Regexp, error) {
	if !v.archDone {
		v.archDone = true
		v.archRE, v.archErr = regexp.Compile(v.Package.Arch)
	}
	return v.archRE, v.archErr
}

// Package is claircore's Package as a vulnerability names it.
type Package struct {
	ID                string   `json:"id,omitempty"`
	Name              string   `json:"name"`
	Version           string   `json:"version"`
	Kind              string   `json:"kind,omitempty"`
	Source            *Package `json:"source,omitempty"`
	NormalizedVersion string   `json:"normalized_version,omitempty"`
	Module            string   `json:"module,omitempty"`
	Arch              string   `json:"arch,omitempty"`
	CPE               string   `json:"cpe,omitempty"`
}

// Distribution is claircore's Distribution.
type Distribution struct {
	ID              string `json:"id"`
	DID             string `json:"did,omitempty"`
	Name            string `json:"name,omitempty"`
	Version         string `json:"version,omitempty"`
	VersionCodeName string `json:"version_code_name,omitempty"`
	VersionID       string `json:"version_id,omitempty"`
	Arch            string `json:"arch,omitempty"`
	CPE             string `json:"cpe,omitempty"`
	PrettyName      string `json:"pretty_name,omitempty"`
}

// Repository is claircore's Repository.
type Repository struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	Key  string `json:"key,omitempty"`
	URI  string `json:"uri,omitempty"`
	CPE  string `json:"cpe,omitempty"`
}

// UnmarshalJSON accepts Clair's forms: an id that is a string or a number
// (claircore writes strings; older documents numbers).
func (r *Repository) UnmarshalJSON(b []byte) error {
	type plain Repository
	var raw struct {
		plain
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = Repository(raw.plain)
	r.ID = rawID(raw.ID)
	return nil
}

// UnmarshalJSON accepts an id that is a string or a number.
func (d *Distribution) UnmarshalJSON(b []byte) error {
	type plain Distribution
	var raw struct {
		plain
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*d = Distribution(raw.plain)
	d.ID = rawID(raw.ID)
	return nil
}

func rawID(b json.RawMessage) string {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	if n := strings.TrimSpace(string(b)); n != "null" {
		return n
	}
	return ""
}

// Severity is claircore's normalized severity.
type Severity int

// The normalized severities, least severe first.
const (
	SeverityUnknown Severity = iota
	SeverityNegligible
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"Unknown", "Negligible", "Low", "Medium", "High", "Critical"}

// String returns the severity's name.
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "Unknown"
	}
	return severityNames[s]
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name; an unknown name is an error, as in
// claircore.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if string(b) == n {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown normalized severity %q (want one of %s)", b, strings.Join(severityNames[:], ", "))
}

// ArchOp says how a vulnerability's package arch is compared with an
// installed package's (claircore's ArchOp). The zero value is claircore's
// "invalid" op: it accepts only when the vulnerability names no arch.
type ArchOp int

// The arch operations.
const (
	ArchOpInvalid ArchOp = iota
	ArchOpEquals
	ArchOpNotEquals
	ArchOpPatternMatch
)

var archOpNames = [...]string{"invalid", "equals", "not equals", "pattern match"}

// MarshalText writes the op's name.
func (o ArchOp) MarshalText() ([]byte, error) {
	if o < 0 || int(o) >= len(archOpNames) {
		return nil, fmt.Errorf("arch op %d out of range", int(o))
	}
	return []byte(archOpNames[o]), nil
}

// UnmarshalText reads an op's name; an unknown one is the invalid op, as in
// claircore.
func (o *ArchOp) UnmarshalText(b []byte) error {
	*o = ArchOpInvalid
	for i, n := range archOpNames {
		if string(b) == n {
			*o = ArchOp(i)
		}
	}
	return nil
}

// Range is claircore's half-open range of normalized versions, [Lower, Upper).
type Range struct {
	Lower Version `json:"["`
	Upper Version `json:")"`
}

// Version is claircore's normalized version: a kind and ten numbers,
// written "kind:n.n.n.n.n.n.n.n.n.n". The zero Version (no kind) is written
// as an empty string.
type Version struct {
	Kind string
	V    [10]int32
}

// MarshalText writes the version in claircore's form.
func (v Version) MarshalText() ([]byte, error) {
	if v.Kind == "" {
		return []byte{}, nil
	}
	var b bytes.Buffer
	b.WriteString(v.Kind)
	b.WriteByte(':')
	for i, n := range v.V {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatInt(int64(n), 10))
	}
	return b.Bytes(), nil
}

// UnmarshalText reads claircore's form. Text without a colon is the zero
// Version, as in claircore; more than ten numbers, or one that is not a
// 32-bit integer, is an error.
func (v *Version) UnmarshalText(b []byte) error {
	*v = Version{}
	s := string(b)
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return nil
	}
	if kind == "" {
		return fmt.Errorf("normalized version %q: empty kind", s)
	}
	parts := strings.Split(rest, ".")
	if len(parts) > len(v.V) {
		return fmt.Errorf("normalized version %q: %d numbers, at most %d", s, len(parts), len(v.V))
	}
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil {
			return fmt.Errorf("normalized version %q: number %d: %w", s, i+1, err)
		}
		v.V[i] = int32(n)
	}
	v.Kind = kind
	return nil
}

// Compare orders two versions of one kind; versions of different kinds are
// ordered by kind, as in claircore.
func (v Version) Compare(x Version) int {
	if v.Kind != x.Kind {
		return strings.Compare(v.Kind, x.Kind)
	}
	for i := range v.V {
		switch {
		case v.V[i] < x.V[i]:
			return -1
		case v.V[i] > x.V[i]:
			return 1
		}
	}
	return 0
}

// Contains reports whether v is in the range, of the range's kind.
func (r *Range) Contains(v Version) bool {
	if r == nil || v.Kind == "" || v.Kind != r.Lower.Kind || v.Kind != r.Upper.Kind {
		return false
	}
	return r.Lower.Compare(v) <= 0 && r.Upper.Compare(v) > 0
}

// Answer is claircore's AffectedManifests: the vulnerabilities asked about,
// by id, and per affected manifest the ids of the vulnerabilities that
// affect it, most severe first.
type Answer struct {
	Vulnerabilities     map[string]*Vulnerability `json:"vulnerabilities"`
	VulnerableManifests map[string][]string       `json:"vulnerable_manifests"`
}
