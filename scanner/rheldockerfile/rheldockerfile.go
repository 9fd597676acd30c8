// Package rheldockerfile finds the component name of a Red Hat container
// image in the Dockerfile Red Hat's build system leaves in it,
// root/buildinfo/Dockerfile-<name>-<version>-<release>: the value of its
// com.redhat.component label ("ubi8-container"). Old images have no content
// manifest; for them, the container-name-to-repositories mapping, loaded
// ahead of time, turns this name into the image's content sets (see
// internal/enrich). Scanning never touches the network.
package rheldockerfile

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
)

// MaxFileSize is the largest Dockerfile Scan reads. Red Hat's are a few KiB.
const MaxFileSize = 1 << 20

// ComponentLabel is the label naming a Red Hat image's component.
const ComponentLabel = "com.redhat.component"

// Scanner reports one repository per distinct component named by the
// com.redhat.component label of a layer's build Dockerfiles: Name is the
// component, Key is rhel.ContainerNameKey, URI and CPE are empty.
//
// A Dockerfile that cannot be read (not UTF-8, over MaxFileSize, not a
// Dockerfile, a variable substitution that fails), that has no such label,
// or whose label depends on a build argument the Dockerfile gives no value
// is skipped with a warning naming it: failing the whole report for a
// missing hint would leave the image unindexed. Other Dockerfiles of the
// layer still count.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "rhel-dockerfile", version "1", a repository
// scanner, match version "1".
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "rhel-dockerfile", Version: "1", Kind: scanner.KindRepository, MatchVersion: "1"}
}

// Match reports whether p is a file directly in root/buildinfo/ whose name
// starts with "Dockerfile-" (and goes on).
func (Scanner) Match(p string) bool {
	dir, name := path.Split(p)
	return dir == "root/buildinfo/" && strings.HasPrefix(name, "Dockerfile-") && len(name) > len("Dockerfile-")
}

// Scan reads the matched Dockerfiles, in path order, and returns their
// components as repositories, sorted by name.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	res := &scanner.Result{}
	names, err := limitio.ParseFiles(ctx, "rhel-dockerfile", files, func(_ context.Context, f scanner.File) (string, error) {
		name, err := readFile(f)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("rhel-dockerfile: skipping %s: %s", f.Path(), clip(err.Error(), maxReason)))
			return "", nil
		}
		return name, nil
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{"": true} // "": a file skipped
	for _, n := range names {
		if !seen[n.Value] {
			seen[n.Value] = true
			res.Repositories = append(res.Repositories, &report.Repository{Name: n.Value, Key: rhel.ContainerNameKey})
		}
	}
	slices.SortFunc(res.Repositories, func(a, b *report.Repository) int { return strings.Compare(a.Name, b.Name) })
	return res, nil
}

// maxReason bounds the reason in a warning: the parser's and the lexer's
// errors quote what they failed on, which can be a long line.
const maxReason = 512

// clip returns s cut to at most n bytes, on a rune boundary, with "..."
// when cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func readFile(f scanner.File) (string, error) {
	data, err := limitio.ReadFile(f, MaxFileSize)
	if err != nil {
		return "", err
	}
	return Component(data)
}

// Component returns the value of the com.redhat.component label of the
// image Dockerfile data builds (see Labels), without surrounding spaces.
// The error says why there is none: the Dockerfile cannot be read, has no
// such label or an empty one, the value depends on a build argument without
// a value in the Dockerfile, or has control characters.
func Component(data []byte) (string, error) {
	labels, err := Labels(data)
	if err != nil {
		return "", err
	}
	l, ok := labels[ComponentLabel]
	if !ok {
		return "", fmt.Errorf("no %s label", ComponentLabel)
	}
	if len(l.Unresolved) > 0 {
		return "", fmt.Errorf("the %s label depends on build arguments without a value in the Dockerfile: %s", ComponentLabel, strings.Join(l.Unresolved, ", "))
	}
	name := strings.TrimSpace(l.Value)
	if name == "" {
		return "", fmt.Errorf("the %s label is empty", ComponentLabel)
	}
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return "", fmt.Errorf("the %s label %q has a control character (%U)", ComponentLabel, name, r)
	}
	return name, nil
}
