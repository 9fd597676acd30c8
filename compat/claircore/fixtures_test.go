package claircore

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stevedoreModule is the module path of the repository this module tests.
const stevedoreModule = "github.com/stevedore-dev/stevedore"

// fixture returns the absolute path of fixture rel (slash-separated,
// relative to the fixtures corpus). The corpus is found as Stevedore's
// internal/testing/fixtures finds it, which this module cannot import (Go's
// internal rule): from the root of the Stevedore repository (the nearest
// directory above the working directory whose go.mod declares Stevedore's
// module), at <root>/testdata/fixtures. A missing fixture fails the test; it is never skipped.
func fixture(t testing.TB, rel string) string {
	t.Helper()
	if rel == "" || !filepath.IsLocal(filepath.FromSlash(rel)) {
		t.Fatalf("fixtures: invalid fixture name %q", rel)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("fixtures: cannot locate fixture %q: %v", rel, err)
	}
	p := filepath.Join(root, "testdata", "fixtures", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixtures: fixture %q is missing: looked for %s: %v", rel, p, err)
	}
	return p
}

// repoRoot returns the nearest directory at or above the working directory
// whose go.mod declares Stevedore's module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if modulePath(filepath.Join(dir, "go.mod")) == stevedoreModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod declaring module " + stevedoreModule + " at or above the working directory")
		}
		dir = parent
	}
}

// modulePath returns the module path a go.mod declares, "" when the file is
// missing or declares none.
func modulePath(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}
