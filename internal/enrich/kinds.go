// Package enrich keeps the data that scanners' results are completed
// with beyond the image itself — today Red Hat's repository-to-CPE mapping
// and container-name-to-repositories mapping — in Postgres, loaded ahead of
// time: by an updater that fetches a configured URL with conditional requests
// on a schedule (one replica at a time), or imported from a file in an
// air-gapped site. Scanning never touches the network for it.
//
// An Enricher completes a report from the loaded data; when the data is
// missing, stale beyond the configured age, or unusable, it says so, and the
// report ends IndexPartial with that reason and is retried later.
package enrich

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/knqyf263/go-cpe/naming"
)

// Kind describes one kind of enrichment data: how to validate it.
type Kind struct {
	// Name identifies the data ("rhel-repository-cpe").
	Name string
	// Description says what it is, for status output.
	Description string
	// Validate checks raw data and returns its number of entries; an
	// error says what is wrong and where.
	Validate func(raw []byte) (entries int, err error)
}

// Names of the known kinds.
const (
	RepositoryCPE         = "rhel-repository-cpe"
	ContainerRepositories = "rhel-container-repositories"
)

// Kinds returns the known kinds, by name.
func Kinds() map[string]Kind {
	return map[string]Kind{
		RepositoryCPE: {
			Name:        RepositoryCPE,
			Description: "Red Hat repository (content set) to CPE mapping (repository-to-cpe.json)",
			Validate:    validateRepositoryCPE,
		},
		ContainerRepositories: {
			Name:        ContainerRepositories,
			Description: "Red Hat container name to repositories mapping (container-name-repos-map.json)",
			Validate:    validateContainerRepositories,
		},
	}
}

// MaxDataSize bounds one data set.
const MaxDataSize = 256 << 20

// RepositoryCPEData is the shape of repository-to-cpe.json:
// {"data": {"<content set>": {"cpes": ["cpe:/o:redhat:..."]}}}.
type RepositoryCPEData struct {
	Data map[string]struct {
		CPEs []string `json:"cpes"`
	} `json:"data"`
}

// ContainerRepositoriesData is the shape of container-name-repos-map.json:
// {"data": {"<container name>": ["<content set>", ...]}}.
type ContainerRepositoriesData struct {
	Data map[string][]string `json:"data"`
}

func decodeStrict(raw []byte, v any) error {
	if len(raw) > MaxDataSize {
		return fmt.Errorf("%d bytes, more than the limit of %d", len(raw), MaxDataSize)
	}
	if !utf8.Valid(raw) {
		return fmt.Errorf("not valid UTF-8")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return fmt.Errorf("not valid JSON at byte %d: %w", syn.Offset, err)
		}
		return fmt.Errorf("not the expected JSON: %w", err)
	}
	return nil
}

// ValidCPE reports whether s is a well-formed CPE 2.2 URI (cpe:/...) or 2.3
// formatted string (cpe:2.3:...).
func ValidCPE(s string) (err error) {
	// The CPE library panics on some malformed input (a truncated
	// percent-escape, found by FuzzValidate): the data comes from outside,
	// so such a value is malformed, not a crash.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%q is not a well-formed CPE (the parser failed: %v)", s, p)
		}
	}()
	switch {
	case strings.HasPrefix(s, "cpe:2.3:"):
		_, err = naming.UnbindFS(s)
	case strings.HasPrefix(s, "cpe:/"):
		_, err = naming.UnbindURI(s)
	default:
		return fmt.Errorf("%q is not a CPE (want cpe:/... or cpe:2.3:...)", s)
	}
	if err != nil {
		return fmt.Errorf("%q is not a well-formed CPE: %w", s, err)
	}
	return nil
}

func validateRepositoryCPE(raw []byte) (int, error) {
	var d RepositoryCPEData
	if err := decodeStrict(raw, &d); err != nil {
		return 0, err
	}
	return checkEntries(d.Data, "repository", func(repo string) error {
		for i, c := range d.Data[repo].CPEs {
			if err := ValidCPE(c); err != nil {
				return fmt.Errorf(`"data"[%q].cpes[%d]: %w`, repo, i, err)
			}
		}
		return nil
	})
}

func validateContainerRepositories(raw []byte) (int, error) {
	var d ContainerRepositoriesData
	if err := decodeStrict(raw, &d); err != nil {
		return 0, err
	}
	return checkEntries(d.Data, "container", func(name string) error {
		for i, r := range d.Data[name] {
			if r == "" {
				return fmt.Errorf(`"data"[%q][%d]: an empty repository name`, name, i)
			}
		}
		return nil
	})
}

// checkEntries checks that data has entries, none under an empty name (a
// what name), and runs entry on each name in order; it returns the number
// of entries, or the first error.
func checkEntries[V any](data map[string]V, what string, entry func(name string) error) (int, error) {
	if len(data) == 0 {
		return 0, fmt.Errorf(`no entries under "data"`)
	}
	for _, name := range slices.Sorted(maps.Keys(data)) {
		if name == "" {
			return 0, fmt.Errorf(`"data": an empty %s name`, what)
		}
		if err := entry(name); err != nil {
			return 0, err
		}
	}
	return len(data), nil
}
