// Package sbomcheck checks SBOMs in tests, against everything the SBOM
// formats' own projects publish: the official JSON Schemas of SPDX 2.3 and
// CycloneDX 1.6 (vendored in internal/sbom/testdata/schema, see its README),
// validated with github.com/santhosh-tekuri/jsonschema/v6 with format
// assertions on; each library's own decoder (tools-golang's JSON reader and
// spdxlib.ValidateDocument; cyclonedx-go's BOM decoder); and an independent
// consumer, the CycloneDX JavaScript library's strict JSON validator
// (@cyclonedx/cyclonedx-library from the npm registry, run with node).
//
// The npm packages are installed with "npm ci" from the lock file in
// testdata/npm into a directory named by the lock file's hash, under
// $STEVEDORE_NPM_DIR's parent or the user's cache directory
// (scripts/test.sh installs them before the tests; a test that finds them
// missing installs them itself). A missing node or npm fails the test.
package sbomcheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdxlib"
)

// dir is this package's directory.
func dir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("sbomcheck: cannot locate its own source directory")
	}
	return filepath.Dir(file)
}

// SchemaDir is the directory of the vendored schemas.
func SchemaDir(t testing.TB) string {
	return filepath.Join(dir(t), "..", "..", "sbom", "testdata", "schema")
}

// Checker validates SBOMs; New compiles the schemas once for all the
// subtests that use it.
type Checker struct {
	spdx *jsonschema.Schema
	cdx  *jsonschema.Schema
}

// The schemas' files and the URLs they are loaded at (their $id, and the
// names bom-1.6 refers to them by).
var (
	spdxSchema = [][2]string{{"spdx-2.3.schema.json", "http://spdx.org/rdf/terms/2.3"}}
	cdxSchemas = [][2]string{
		{"bom-1.6.SNAPSHOT.schema.json", "http://cyclonedx.org/schema/bom-1.6.SNAPSHOT.schema.json"},
		{"spdx.SNAPSHOT.schema.json", "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json"},
		{"jsf-0.82.SNAPSHOT.schema.json", "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json"},
	}
)

// New compiles the schemas.
func New(t testing.TB) *Checker {
	t.Helper()
	return &Checker{spdx: compile(t, spdxSchema), cdx: compile(t, cdxSchemas)}
}

// compile loads files (the first is the root) and compiles the root.
func compile(t testing.TB, files [][2]string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(SchemaDir(t), f[0]))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("schema %s: %v", f[0], err)
		}
		if err := c.AddResource(f[1], doc); err != nil {
			t.Fatalf("schema %s: %v", f[0], err)
		}
	}
	s, err := c.Compile(files[0][1])
	if err != nil {
		t.Fatalf("compile schema %s: %v", files[0][0], err)
	}
	return s
}

func validate(t testing.TB, s *jsonschema.Schema, what string, data []byte) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not JSON: %v", what, err)
	}
	if err := s.Validate(doc); err != nil {
		t.Fatalf("%s does not validate against the official schema: %v", what, err)
	}
}

// SPDX checks data against the SPDX 2.3 JSON Schema, decodes it with
// tools-golang and validates the document with spdxlib; it returns the
// decoded document.
func (c *Checker) SPDX(t testing.TB, data []byte) *spdx.Document {
	t.Helper()
	validate(t, c.spdx, "SPDX 2.3 document", data)
	doc, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("tools-golang cannot read the SPDX document: %v", err)
	}
	if doc.SPDXVersion != spdx.Version {
		t.Fatalf("spdxVersion %q, want %q", doc.SPDXVersion, spdx.Version)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatalf("tools-golang's validation: %v", err)
	}
	return doc
}

// CycloneDX checks data against the CycloneDX 1.6 JSON Schema and decodes
// it with cyclonedx-go; it returns the decoded BOM.
func (c *Checker) CycloneDX(t testing.TB, data []byte) *cdx.BOM {
	t.Helper()
	validate(t, c.cdx, "CycloneDX 1.6 BOM", data)
	bom := new(cdx.BOM)
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(bom); err != nil {
		t.Fatalf("cyclonedx-go cannot decode the BOM: %v", err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 {
		t.Fatalf("specVersion %v, want 1.6", bom.SpecVersion)
	}
	return bom
}

// NodeValidateCycloneDX runs @cyclonedx/cyclonedx-library's strict JSON
// validator (spec 1.6) on each file, with node, and fails the test unless
// every one is valid.
func NodeValidateCycloneDX(t testing.TB, files ...string) {
	t.Helper()
	if len(files) == 0 {
		t.Fatal("NodeValidateCycloneDX: no file")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to run the CycloneDX JavaScript library's validator (apt-get install nodejs npm): %v", err)
	}
	modules := npmModules(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(dir(t), "testdata", "validate-cyclonedx.cjs")}, files...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("@cyclonedx/cyclonedx-library rejects the BOM: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), ": valid CycloneDX 1.6"); n != len(files) {
		t.Fatalf("the validator said %d of %d files are valid:\n%s", n, len(files), out)
	}
	t.Logf("@cyclonedx/cyclonedx-library:\n%s", out)
}

// npmModules returns the node_modules directory of the consumer's packages,
// installing them with npm ci when they are not there yet.
func npmModules(t testing.TB) string {
	t.Helper()
	src := filepath.Join(dir(t), "testdata", "npm")
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := NPMDir(lock)
	if err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("STEVEDORE_NPM_DIR"); d != "" && d != want {
		t.Fatalf("STEVEDORE_NPM_DIR=%s, but the lock file %s/package-lock.json installs into %s", d, src, want)
	}
	modules := filepath.Join(want, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "@cyclonedx", "cyclonedx-library", "package.json")); err == nil {
		return modules
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is needed to install @cyclonedx/cyclonedx-library (apt-get install npm): %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	// Install into a directory of its own, then rename: two test
	// processes installing at once do not see each other's half.
	tmp, err := os.MkdirTemp(filepath.Dir(want), ".npm-install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--prefix", tmp, "--no-audit", "--no-fund", "--loglevel=error")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci (the CycloneDX JavaScript library, from %s): %v\n%s", src, err, out)
	}
	if err := os.Rename(tmp, want); err != nil {
		if _, serr := os.Stat(filepath.Join(modules, "@cyclonedx", "cyclonedx-library", "package.json")); serr != nil {
			t.Fatalf("install the npm packages into %s: %v", want, err)
		}
		// Another process installed them first.
	}
	return modules
}

// NPMDir is where the packages of lock (the bytes of testdata/npm's
// package-lock.json) are installed: $XDG_CACHE_HOME/stevedore (or the
// user's cache directory's stevedore) /npm-<12 hex of the lock's SHA-256>.
// scripts/test.sh computes the same path.
func NPMDir(lock []byte) (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("the npm cache directory: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	if !filepath.IsAbs(base) {
		return "", errors.New("the npm cache directory: XDG_CACHE_HOME is not an absolute path")
	}
	h := sha256.Sum256(lock)
	return filepath.Join(base, "stevedore", "npm-"+hex.EncodeToString(h[:])[:12]), nil
}
