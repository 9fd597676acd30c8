package rhelrepo

import (
	"testing"

	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzParse checks that any content manifest gives content sets or a
// warning naming the file, never a panic or an error, and that Scan reports
// exactly the distinct non-empty sets Parse finds, or, when the manifest
// says from_dnf_hint, none (the layer has no dnf history). Seeds: the
// manifests of quay/claircore's RHEL test layers (testdata/fixtures/layers),
// variants, and one as Konflux writes it.
func FuzzParse(f *testing.F) {
	f.Add([]byte("{\n    \"content_sets\": [\n        \"content-set-1\",\n        \"content-set-2\"\n    ]\n}"))
	f.Add([]byte("File replaced by RapidFort/root/buildinfo/content_manifests/ubi8-container-8.7-1112.json\n"))
	f.Add([]byte(`{"metadata":{"icm_version":1},"content_sets":["rhel-8-for-x86_64-baseos-rpms"],"image_contents":[]}`))
	f.Add([]byte(`{"metadata":{"icm_version":1,"image_layer_index":0},"from_dnf_hint":true,"content_sets":["ubi-8-appstream-rpms"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, perr := Parse(data)
		res := scannertest.ScanParsed(t, Scanner{}, "root/buildinfo/content_manifests/x.json", data, perr)
		if res == nil {
			return
		}
		if m.FromDNFHint {
			// No history in the layer: no repositories.
			if len(res.Repositories) != 0 {
				t.Fatalf("from_dnf_hint without a history gave %+v", res.Repositories)
			}
			return
		}
		distinct := map[string]bool{}
		for _, s := range m.ContentSets {
			if s == "" {
				t.Fatal("empty content set")
			}
			distinct[s] = true
		}
		if len(res.Repositories) != len(distinct) {
			t.Fatalf("%d repositories for %d distinct sets", len(res.Repositories), len(distinct))
		}
	})
}
