package coalesce

import (
	"slices"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
)

// TestOwnedFiles checks that a language package whose file an OS package
// owns is reported once, by the OS package, and that ownership follows the
// overlay rules. The paths are those of Debian's python3-six and of a
// pip-installed package next to it.
func TestOwnedFiles(t *testing.T) {
	const (
		d1 = report.Digest("sha256:1111111111111111111111111111111111111111111111111111111111111111")
		d2 = report.Digest("sha256:2222222222222222222222222222222222222222222222222222222222222222")
		d3 = report.Digest("sha256:3333333333333333333333333333333333333333333333333333333333333333")

		sixInfo    = "usr/lib/python3/dist-packages/six-1.16.0.egg-info"
		sixPKGINFO = sixInfo + "/PKG-INFO"
		reqMeta    = "usr/local/lib/python3.11/dist-packages/requests-2.31.0.dist-info/METADATA"
		goBin      = "usr/bin/docker-init"
	)
	deb := func(name string) *report.Package {
		return &report.Package{Name: name, Version: "1", Kind: report.KindBinary, PackageDB: "var/lib/dpkg/status"}
	}
	py := func(name, file string) *report.Package {
		return &report.Package{Name: name, Version: "1", Kind: report.KindBinary, PackageDB: file, Filepath: file}
	}
	names := func(r *report.Report) []string {
		var out []string
		for _, p := range r.Packages {
			out = append(out, p.Name)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name   string
		layers []Layer
		want   []string
	}{
		{"owned dist-info directory drops the python package", []Layer{{
			Digest:     d1,
			Packages:   []*report.Package{deb("python3-six"), py("six", sixPKGINFO), py("requests", reqMeta)},
			OwnedFiles: []string{sixInfo, sixPKGINFO},
		}}, []string{"python3-six", "requests"}},
		{"owned directory alone is enough", []Layer{{
			Digest:     d1,
			Packages:   []*report.Package{deb("python3-six"), py("six", sixPKGINFO)},
			OwnedFiles: []string{sixInfo},
		}}, []string{"python3-six"}},
		{"owned binary", []Layer{{
			Digest:     d1,
			Packages:   []*report.Package{deb("tini"), py("github.com/krallin/tini", goBin)},
			OwnedFiles: []string{goBin},
		}}, []string{"tini"}},
		{"ownership in a higher layer", []Layer{
			{Digest: d1, Packages: []*report.Package{py("six", sixPKGINFO)}},
			{Digest: d2, Packages: []*report.Package{deb("python3-six")}, OwnedFiles: []string{sixInfo}},
		}, []string{"python3-six"}},
		{"a removed OS package owns nothing", []Layer{
			{Digest: d1, Packages: []*report.Package{deb("python3-six")}, OwnedFiles: []string{sixInfo, sixPKGINFO}},
			{Digest: d2, Packages: []*report.Package{}, PackageDBs: []string{"var/lib/dpkg/status"}, Whiteouts: []string{sixInfo}},
			{Digest: d3, Packages: []*report.Package{py("six", sixPKGINFO)}},
		}, []string{"six"}},
		{"an unrelated path is not ownership", []Layer{{
			Digest:     d1,
			Packages:   []*report.Package{py("six", sixPKGINFO)},
			OwnedFiles: []string{"usr/lib/python3/dist-packages/six-1.16.0.egg-infox", "usr/lib/python3/dist-packages"},
		}}, []string{"six"}},
		{"OS packages are never dropped", []Layer{{
			Digest:     d1,
			Packages:   []*report.Package{deb("python3-six")},
			OwnedFiles: []string{"var/lib/dpkg/status"},
		}}, []string{"python3-six"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.layers[0].Packages)
			got := names(Coalesce(d1, tt.layers))
			if !slices.Equal(got, tt.want) {
				t.Errorf("packages %q, want %q", got, tt.want)
			}
			if len(tt.layers[0].Packages) != before {
				t.Error("the input was modified")
			}
		})
	}
}

func TestIsOwned(t *testing.T) {
	owned := map[string]bool{
		"usr/lib/python3/dist-packages/six-1.16.0.egg-info": true,
		"usr/lib/python3/dist-packages/foo-1.0.dist-info":   true,
		"usr/share/java/foo.jar":                            true,
		"usr/lib/python3/dist-packages":                     true,
	}
	for fp, want := range map[string]bool{
		"usr/lib/python3/dist-packages/six-1.16.0.egg-info":              true,
		"usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO":     true,
		"usr/lib/python3/dist-packages/foo-1.0.dist-info/METADATA":       true,
		"usr/share/java/foo.jar":                                         true,
		"usr/lib/python3/dist-packages/bar-1.0.dist-info/METADATA":       false, // its parent directory owned is not enough
		"usr/share/java/foo.jar.bak":                                     false,
		"usr/local/lib/python3/dist-packages/foo-1.0.dist-info/METADATA": false,
	} {
		if got := isOwned(fp, owned); got != want {
			t.Errorf("isOwned(%q) = %v, want %v", fp, got, want)
		}
	}
}
