package enrich_test

import (
	"testing"

	"github.com/stevedore-dev/stevedore/internal/enrich"
)

func FuzzValidate(f *testing.F) {
	f.Add([]byte(mapping))
	f.Add([]byte(`{"data":{"ubi8/ubi":["rhel-8-for-x86_64-baseos-rpms"]}}`))
	f.Add([]byte(`{"data":{"r":{"cpes":["cpe:2.3:o:redhat:enterprise_linux:8:*:*:*:*:*:*:*"]}}}`))
	kinds := enrich.Kinds()
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, k := range kinds {
			n, err := k.Validate(raw)
			if err == nil && n <= 0 {
				t.Fatalf("%s: valid with %d entries", k.Name, n)
			}
		}
	})
}
