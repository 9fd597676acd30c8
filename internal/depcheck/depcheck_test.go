package depcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/stevedore-dev/stevedore"

// layers places every package of the module (by its path relative to the
// module, longest prefix first) in a layer of the tree. A package may
// import a package of a lower layer, or one of its own unit (the same
// entry: a parent and its subpackages, or siblings under it); never one of
// the same or a higher layer in another unit. A new package must be given
// a place here.
var layers = []struct {
	unit  string
	layer float64
}{
	// Vocabulary: wire types and what every part shares; nothing of ours
	// below them.
	{"report", 0},
	{"internal/iocount", 0},
	{"client", 1},
	{"scanner", 1},
	{"internal/redact", 1},
	{"internal/tick", 1},
	{"internal/ecosystem", 1},
	{"internal/telemetry", 1},
	{"internal/reportbody", 1},
	{"internal/queue/natsembed", 1},
	{"internal/cli/localpg", 1},
	// Storage, the queue and the registry client.
	{"internal/postgres", 2},
	{"internal/registry", 3},
	{"internal/queue", 3},
	// Reading layers; what completes and exports a report.
	{"internal/layer", 4},
	{"internal/enrich", 4},
	{"internal/affected", 4},
	{"internal/sbom", 4},
	// The engine: one manifest, then the roles around it.
	{"internal/indexer", 5},
	{"internal/worker", 6},
	{"internal/intake", 6},
	{"internal/api", 7},
	{"internal/maintenance", 7.5},
	{"internal/app", 8},
	{"internal/config", 9},
	{"internal/cli", 9.5},
	// Tests' helpers and tests, and the commands: they may import anything.
	{"internal/testing", 10},
	{"internal/e2e", 10},
	{"internal/depcheck", 10},
	{"bench", 11},
	{"cmd", 11},
}

// place returns the unit and layer of a module-relative package path.
func place(rel string) (string, float64, bool) {
	best := -1
	for i, l := range layers {
		if rel == l.unit || strings.HasPrefix(rel, l.unit+"/") {
			if best < 0 || len(l.unit) > len(layers[best].unit) {
				best = i
			}
		}
	}
	if best < 0 {
		return "", 0, false
	}
	return layers[best].unit, layers[best].layer, true
}

// isolated lists packages that may import nothing of the module, and the
// only packages of the module others may import.
var isolated = map[string][]string{
	"report":             nil,
	"client":             {"report"},
	"internal/telemetry": nil,
	"internal/redact":    nil,
	"internal/tick":      nil,
	"internal/iocount":   nil,
}

// exceptions are imports that break the layering on purpose, with the
// reason.
var exceptions = map[[2]string]string{
	// scannertest runs a scanner the way the indexer does: through the real
	// layer reader, over the fixture corpus.
	{"scanner/scannertest", "internal/layer"}:            "test helper",
	{"scanner/scannertest", "internal/testing/fixtures"}: "test helper",
}

type pkg struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; expected the whole module", len(pkgs))
	}
	return pkgs
}

// ours returns the module-relative paths of p's imports in the module.
func ours(p pkg) []string {
	var out []string
	for _, imp := range p.Imports {
		if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
			out = append(out, rel)
		}
	}
	return out
}

func rel(p pkg) string { return strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/") }

// TestImportDirection checks every import of every non-test file in the
// module against the layers.
func TestImportDirection(t *testing.T) {
	for _, p := range listPackages(t) {
		from := rel(p)
		fu, fl, ok := place(from)
		if !ok {
			t.Errorf("package %s has no place in depcheck's layers: add it", from)
			continue
		}
		for _, to := range ours(p) {
			if why, ok := exceptions[[2]string{from, to}]; ok && why != "" {
				continue
			}
			tu, tl, ok := place(to)
			if !ok {
				continue // reported as its own package
			}
			if tu != fu && tl >= fl {
				t.Errorf("%s (layer %v, %s) imports %s (layer %v, %s): an upward or sideways arrow", from, fl, fu, to, tl, tu)
			}
		}
	}
}

// TestPublicSurface checks that the public packages are report, client and
// scanner (with its ecosystems), and that they import nothing of the engine.
func TestPublicSurface(t *testing.T) {
	for _, p := range listPackages(t) {
		from := rel(p)
		if strings.HasPrefix(from, "internal/") || strings.HasPrefix(from, "cmd/") || strings.HasPrefix(from, "bench/") {
			continue
		}
		if from != "report" && from != "client" && from != "scanner" && !strings.HasPrefix(from, "scanner/") {
			t.Errorf("public package %s: the public surface is report, client and scanner/...; put it under internal/", from)
		}
		for _, to := range ours(p) {
			if _, ok := exceptions[[2]string{from, to}]; ok {
				continue
			}
			if strings.HasPrefix(to, "internal/") {
				t.Errorf("public package %s imports the engine package %s", from, to)
			}
		}
	}
}

// TestIsolated checks the packages that import nothing of ours (or only the
// wire types).
func TestIsolated(t *testing.T) {
	for _, p := range listPackages(t) {
		from := rel(p)
		allowed, ok := isolated[from]
		if !ok {
			continue
		}
		for _, to := range ours(p) {
			if !slices.Contains(allowed, to) {
				t.Errorf("%s may import only %q of the module; it imports %s", from, allowed, to)
			}
		}
	}
}

// TestTestHelpersStayInTests checks that production code does not import
// the test helpers under internal/testing.
func TestTestHelpersStayInTests(t *testing.T) {
	for _, p := range listPackages(t) {
		from := rel(p)
		if strings.HasPrefix(from, "internal/testing/") || strings.HasPrefix(from, "internal/e2e") ||
			strings.HasPrefix(from, "bench/") || from == "cmd/stevedore-registry" {
			continue
		}
		for _, to := range ours(p) {
			if _, ok := exceptions[[2]string{from, to}]; ok {
				continue
			}
			if strings.HasPrefix(to, "internal/testing/") {
				t.Errorf("%s imports the test helper %s outside a test", from, to)
			}
		}
	}
}

// TestPlace tests the layer lookup itself.
func TestPlace(t *testing.T) {
	for _, tc := range []struct {
		rel   string
		unit  string
		layer float64
		ok    bool
	}{
		{"report", "report", 0, true},
		{"internal/queue/natsembed", "internal/queue/natsembed", 1, true},
		{"internal/queue", "internal/queue", 3, true},
		{"internal/api/webhooks", "internal/api", 7, true},
		{"internal/cli/localpg", "internal/cli/localpg", 1, true},
		{"internal/cli/admin", "internal/cli", 9.5, true},
		{"scanner/internal/dnf", "scanner", 1, true},
		{"internal/apiary", "", 0, false},
		{"nowhere", "", 0, false},
	} {
		u, l, ok := place(tc.rel)
		if u != tc.unit || l != tc.layer || ok != tc.ok {
			t.Errorf("place(%q) = %q, %v, %v; want %q, %v, %v", tc.rel, u, l, ok, tc.unit, tc.layer, tc.ok)
		}
	}
}
