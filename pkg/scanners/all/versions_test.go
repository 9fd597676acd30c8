package all_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"go/parser"
	"go/printer"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/pkg/scanners"
	"github.com/stevedore-dev/stevedore/pkg/scanners/all"
)

// The guard against the bug that started this rule (see CONTRIBUTING.md): a
// scanner learned something new without a version change, and reports made
// by its old code were served forever. testdata/versions.txt records, per
// scanner, its version and a hash of its code; when the code changes and the
// version does not, this test fails and names the scanner to bump.

var updateVersions = flag.Bool("update-versions", false, "rewrite testdata/versions.txt from the current scanners")

const module = "github.com/stevedore-dev/stevedore"

type record struct{ Version, Hash string }

func TestScannerVersionsGuard(t *testing.T) {
	root := moduleRoot(t)
	current := map[string]record{}
	for _, s := range all.Default() {
		in := s.Info()
		h, err := codeHash(root, pkgDir(s))
		if err != nil {
			t.Fatal(err)
		}
		current[in.Name] = record{Version: in.Version, Hash: h}
	}
	file := filepath.Join("testdata", "versions.txt")
	if *updateVersions {
		if err := os.WriteFile(file, []byte(format(current)), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v: create it with: go test ./pkg/scanners/all -run Guard -update-versions", err)
	}
	recorded, err := parse(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, problem := range check(recorded, current) {
		t.Error(problem)
	}
}

// check compares recorded and current scanners and says what is wrong.
func check(recorded, current map[string]record) []string {
	const how = "then record it: go test ./pkg/scanners/all -run Guard -update-versions"
	var out []string
	for _, name := range slices.Sorted(maps.Keys(current)) {
		cur := current[name]
		rec, ok := recorded[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("scanner %s (version %s) is not recorded: %s", name, cur.Version, how))
		case rec.Hash != cur.Hash && rec.Version == cur.Version:
			out = append(out, fmt.Sprintf("scanner %s changed but its version is still %s: bump its Version (and its MatchVersion if what it matches changed) so that reports made by the old code are re-indexed; %s",
				name, cur.Version, how))
		case rec.Version != cur.Version:
			out = append(out, fmt.Sprintf("scanner %s is now version %s (recorded: %s): %s", name, cur.Version, rec.Version, how))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(recorded)) {
		if _, ok := current[name]; !ok {
			out = append(out, fmt.Sprintf("scanner %s is recorded but no longer enabled: %s", name, how))
		}
	}
	return out
}

func TestGuardNamesAChangedScanner(t *testing.T) {
	// A copy of the scanners' code in which dpkg's behaviour changes and
	// its version does not.
	root := moduleRoot(t)
	tmp := t.TempDir()
	if err := copyTree(filepath.Join(root, "pkg", "scanners"), filepath.Join(tmp, "pkg", "scanners")); err != nil {
		t.Fatal(err)
	}
	recorded := map[string]record{}
	current := map[string]record{}
	for _, s := range all.Default() {
		in := s.Info()
		before, err := codeHash(tmp, pkgDir(s))
		if err != nil {
			t.Fatal(err)
		}
		recorded[in.Name] = record{in.Version, before}
	}
	dpkgDir := filepath.Join(tmp, "pkg", "scanners", "dpkg")
	files, _ := filepath.Glob(filepath.Join(dpkgDir, "*.go"))
	changed := false
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, _ := os.ReadFile(f)
		// A comment alone is not a change; code is.
		os.WriteFile(f, append(b, []byte("\n// just a comment\n")...), 0o644)
		if !changed {
			os.WriteFile(f, append(b, []byte("\nvar _ = \"a behaviour change\"\n")...), 0o644)
			changed = true
		}
	}
	for _, s := range all.Default() {
		after, err := codeHash(tmp, pkgDir(s))
		if err != nil {
			t.Fatal(err)
		}
		current[s.Info().Name] = record{s.Info().Version, after}
	}
	problems := check(recorded, current)
	if len(problems) != 1 || !strings.Contains(problems[0], "scanner dpkg changed but its version is still") {
		t.Fatalf("guard said %q, want one problem naming dpkg", problems)
	}
}

// pkgDir is the scanner's package directory, relative to the module root.
func pkgDir(s scanners.Scanner) string {
	t := reflect.TypeOf(s)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.TrimPrefix(strings.TrimPrefix(t.PkgPath(), module), "/")
}

// codeHash hashes the code (comments stripped, formatting normalised) of the
// non-test Go files of dir and of the module packages under pkg/scanners/
// that it imports, recursively.
func codeHash(root, dir string) (string, error) {
	h := sha256.New()
	seen := map[string]bool{}
	var walk func(dir string) error
	walk = func(dir string) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			return err
		}
		slices.Sort(files)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			af.Comments = nil
			var buf bytes.Buffer
			if err := printer.Fprint(&buf, fset, af); err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(filepath.Join(dir, filepath.Base(f))), buf.Len())
			h.Write(buf.Bytes())
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if sub, ok := strings.CutPrefix(p, module+"/pkg/scanners/"); ok {
					if err := walk("pkg/scanners/" + sub); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := walk(dir); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func format(m map[string]record) string {
	var b strings.Builder
	b.WriteString("# scanner version code-hash: maintained by go test ./pkg/scanners/all -run Guard -update-versions\n")
	for _, name := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s %s %s\n", name, m[name].Version, m[name].Hash)
	}
	return b.String()
}

func parse(s string) (map[string]record, error) {
	out := map[string]record{}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want \"name version hash\", got %q", i+1, line)
		}
		out[f[0]] = record{Version: f[1], Hash: f[2]}
	}
	return out, nil
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
