package rhelrepo

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// TestLayers reads quay/claircore's RHEL test layers (rhel/testdata,
// Apache-2.0; testdata/fixtures/SOURCES.md). claircore's expectations for the
// same layers: content-set-1 and content-set-2 for the embedded and the
// RHCOS layers (before its CPE mapping), none for the layer without
// manifests and for the invalid one.
func TestLayers(t *testing.T) {
	sets := []string{"content-set-1", "content-set-2"}
	scannertest.CheckRepositoryLayers(t, Scanner{}, RepositoryKey, []scannertest.RepositoryLayer{
		{Layer: "claircore_layer-with-embedded-cs.tar", Files: []string{"root/buildinfo/content_manifests/foo-1.1-2.json"}, Want: sets},
		{Layer: "claircore_rhcos-layer-with-embedded-cs.tar", Want: sets},
		{Layer: "claircore_rhcos-layer-with-conflicting-files.tar", Files: []string{"root/buildinfo/content_manifests/foo-1.1-2.json", "usr/share/buildinfo/foo-1.1-2.json"}, Want: sets},
		{Layer: "claircore_layer-with-no-cpe-info.tar", Files: []string{}},
		{Layer: "claircore_layer-with-cpe.tar", Files: []string{}}, // a Dockerfile only: the Container API fallback is a network call, not done
		{Layer: "claircore_layer-with-invalid-content-manifests-json.tar", Files: []string{"root/buildinfo/content_manifests/ubi8-container-8.7-1112.json"}, Warn: "ubi8-container-8.7-1112.json"},
	})
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		dnf  bool
		err  string
	}{
		{`{"content_sets": ["a", "b", "a"]}`, []string{"a", "b", "a"}, false, ""},
		{`{"metadata": {"icm_version": 1}, "content_sets": ["rhel-8-for-x86_64-baseos-rpms"], "image_contents": []}`, []string{"rhel-8-for-x86_64-baseos-rpms"}, false, ""},
		// As Konflux writes it (konflux-ci/build-definitions, inject-icm.sh).
		{`{"metadata": {"icm_version": 1, "image_layer_index": 0}, "from_dnf_hint": true, "content_sets": ["ubi-8-appstream-rpms"]}`, []string{"ubi-8-appstream-rpms"}, true, ""},
		{`{"from_dnf_hint": false, "content_sets": []}`, nil, false, ""},
		{`{"from_dnf_hint": null}`, nil, false, ""},
		{`{}`, nil, false, ""},
		{`null`, nil, false, ""},
		{`{"content_sets": null}`, nil, false, ""},
		{`{"content_sets": ["", " x "]}`, []string{"x"}, false, ""},
		{`{"content_sets": [1]}`, nil, false, "not a content manifest"},
		{`{"content_sets": "a"}`, nil, false, "not a content manifest"},
		{`{"from_dnf_hint": "true"}`, nil, false, "not a content manifest"},
		{`[]`, nil, false, "not a content manifest"},
		{`File replaced by RapidFort`, nil, false, "not a content manifest"},
		{`{"content_sets": ["a"]} {}`, nil, false, "data after"},
		{"{\"content_sets\": [\"\xff\"]}", nil, false, "UTF-8"},
		{``, nil, false, "not a content manifest"},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got.ContentSets, tt.want) || got.FromDNFHint != tt.dnf {
			t.Errorf("Parse(%q) = %+v, %v; want %q, %v", tt.in, got, err, tt.want, tt.dnf)
		}
	}
}

func TestInfoMatch(t *testing.T) {
	if RepositoryKey != rhel.ContentSetKey {
		t.Errorf("RepositoryKey = %q", RepositoryKey)
	}
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "rhel-content-manifest", Version: "2", Kind: scanner.KindRepository, MatchVersion: "2"}, map[string]bool{
		"root/buildinfo/content_manifests/ubi9-container-9.4-1.json": true,
		"usr/share/buildinfo/content-sets.json":                      true,
		"var/lib/dnf/history.sqlite":                                 true,
		"usr/lib/sysimage/libdnf5/transaction_history.sqlite":        true,
		"var/lib/dnf/history.sqlite-wal":                             false,
		"var/lib/rpm/rpmdb.sqlite":                                   false,
		"root/buildinfo/content_manifests/.json":                     false,
		"root/buildinfo/content_manifests/a/b.json":                  false,
		"root/buildinfo/content_manifests/x.txt":                     false,
		"root/buildinfo/Dockerfile-ubi9-9.4-1":                       false,
		"x/root/buildinfo/content_manifests/a.json":                  false,
	})
}

func TestLimits(t *testing.T) {
	big := scannertest.FileFunc("root/buildinfo/content_manifests/a.json", MaxFileSize+1, nil)
	ok := scannertest.File("root/buildinfo/content_manifests/b.json", []byte(`{"content_sets":["x"]}`))
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{big, ok})
	if err != nil || len(res.Repositories) != 1 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "a.json") {
		t.Errorf("got %+v, %v", res, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Scanner{}).Scan(ctx, []scanner.File{ok}); err == nil {
		t.Error("canceled: no error")
	}
}
