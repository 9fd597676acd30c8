package all

import (
	"context"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestDefault(t *testing.T) {
	want := []scanner.Info{
		{Name: "os-release", Version: "3", Kind: scanner.KindDistribution},
		{Name: "dpkg", Version: "3", Kind: scanner.KindPackage},
		{Name: "apk", Version: "2", Kind: scanner.KindPackage},
		{Name: "rpm", Version: "3", Kind: scanner.KindPackage, MatchVersion: "2"},
		{Name: "python", Version: "2", Kind: scanner.KindPackage},
		{Name: "java", Version: "2", Kind: scanner.KindPackage},
		{Name: "gobinary", Version: "2", Kind: scanner.KindPackage},
		{Name: "npm", Version: "1", Kind: scanner.KindPackage},
		{Name: "ruby", Version: "1", Kind: scanner.KindPackage},
		{Name: "runtime", Version: "1", Kind: scanner.KindPackage},
		{Name: "rust", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"},
		{Name: "dotnet", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"},
		{Name: "composer", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"},
		{Name: "conda", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"},
		{Name: "rhel-content-manifest", Version: "2", Kind: scanner.KindRepository, MatchVersion: "2"},
		{Name: "rhel-dockerfile", Version: "1", Kind: scanner.KindRepository, MatchVersion: "1"},
	}
	for i := 0; i < 2; i++ { // stable across calls
		got := Default()
		if len(got) != len(want) {
			t.Fatalf("%d scanners, want %d", len(got), len(want))
		}
		for j, s := range got {
			if s.Info() != want[j] {
				t.Errorf("scanner %d: %+v, want %+v", j, s.Info(), want[j])
			}
		}
	}
	a, b := Default(), Default()
	a[0] = nil
	if b[0] == nil {
		t.Error("Default returns a shared slice")
	}
}

// TestLayer runs the default scanners the way the layer reader does, over
// the files of the alpine:3.10 layer that the corpus extracted from
// aquasecurity/trivy's alpine-310.tar.gz: every scanner sees every path,
// and each gets the files it matched.
func TestLayer(t *testing.T) {
	files := []scanner.File{
		scannertest.FromDisk(t, "etc/os-release", fixtures.Path(t, "osrelease/trivy_alpine-310_os-release")),
		scannertest.FromDisk(t, "etc/alpine-release", fixtures.Path(t, "osrelease/trivy_alpine-310_alpine-release")),
		scannertest.FromDisk(t, "lib/apk/db/installed", fixtures.Path(t, "apk/trivy_alpine-310_installed")),
	}
	var dists, pkgs int
	for _, s := range Default() {
		var matched []scanner.File
		for _, f := range files {
			if s.Match(f.Path()) {
				matched = append(matched, f)
			}
		}
		res, err := s.Scan(context.Background(), matched)
		if err != nil {
			t.Fatalf("%s: %v", s.Info().Name, err)
		}
		dists += len(res.Distributions)
		pkgs += len(res.Packages)
	}
	if dists != 1 || pkgs != 14 {
		t.Errorf("%d distributions and %d packages, want 1 and 14", dists, pkgs)
	}
}
