package scanner_test

import (
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
)

// TestStateOf: the state depends on every name, version and kind, and not
// on the order.
func TestStateOf(t *testing.T) {
	a := scanner.Info{Name: "dpkg", Version: "3", Kind: scanner.KindPackage}
	b := scanner.Info{Name: "os-release", Version: "3", Kind: scanner.KindDistribution}
	base := scanner.StateOf([]scanner.Info{a, b})
	for _, tc := range []struct {
		name  string
		infos []scanner.Info
		same  bool
	}{
		{"same set", []scanner.Info{a, b}, true},
		{"other order", []scanner.Info{b, a}, true},
		{"a version bumped", []scanner.Info{{Name: "dpkg", Version: "4", Kind: scanner.KindPackage}, b}, false},
		{"another kind", []scanner.Info{{Name: "dpkg", Version: "3", Kind: scanner.KindRepository}, b}, false},
		{"one more part", []scanner.Info{a, b, {Name: "coalesce", Version: "3", Kind: "coalescer"}}, false},
		{"one fewer", []scanner.Info{a}, false},
		{"names run together", []scanner.Info{{Name: "dpkg3", Version: "", Kind: scanner.KindPackage}, b}, false},
	} {
		if got := scanner.StateOf(tc.infos) == base; got != tc.same {
			t.Errorf("%s: same state = %v, want %v", tc.name, got, tc.same)
		}
	}
	if len(base) != 64 {
		t.Errorf("state %q is not a hex sha256", base)
	}
}
