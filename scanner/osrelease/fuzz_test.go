package osrelease

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// quote renders v as a double-quoted os-release value.
func quote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if strings.IndexByte("\"\\`$", v[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}

// FuzzParse is seeded with every file of the corpus's osrelease directory
// (quay/claircore, anchore/syft and aquasecurity/trivy test data; the
// non-os-release files there make good near-miss inputs). It checks that
// Parse and Scan never panic, that what Parse accepts Scan accepts, and that
// the parsed assignments survive a round trip through canonical quoting.
func FuzzParse(f *testing.F) {
	fixtures.Seed(f, "osrelease", "*")
	f.Add([]byte("A=\"x\\\"y\" 'z'\\ w # c\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kv, perr := Parse(data)
		res, serr := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("etc/os-release", data)})
		if (perr == nil) != (serr == nil) {
			t.Fatalf("Parse error %v but Scan error %v", perr, serr)
		}
		if perr != nil {
			if !strings.Contains(serr.Error(), "etc/os-release") {
				t.Fatalf("Scan error %q does not name the file", serr)
			}
			return
		}
		if len(kv) > 0 && len(res.Distributions) != 1 {
			t.Fatalf("%d keys but %d distributions", len(kv), len(res.Distributions))
		}
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(k + "=" + quote(kv[k]) + "\n")
		}
		again, err := Parse([]byte(b.String()))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if len(again) != len(kv) {
			t.Fatalf("round trip: %q became %q", kv, again)
		}
		for k, v := range kv {
			if again[k] != v {
				t.Fatalf("round trip: %s=%q became %q", k, v, again[k])
			}
		}
	})
}
