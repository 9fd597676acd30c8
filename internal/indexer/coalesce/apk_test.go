package coalesce

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/apk"
	"github.com/stevedore-dev/stevedore/scanner/osrelease"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// scanWith runs a scanner over one file.
func scanWith(t testing.TB, s scanner.Scanner, path string, body []byte) *scanner.Result {
	t.Helper()
	res, err := s.Scan(context.Background(), []scanner.File{scannertest.File(path, body)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestApkPURLs reads a real apk installed database (the corpus's
// apk/syft_multiple-2_installed) with the apk scanner, and real os-release
// files of Wolfi (Syft's), Chainguard (Grype's) and Alpine 3.11 (Trivy's)
// with the os-release scanner, as one layer, and checks the PURLs the
// coalescer gives the apk packages: namespace the os-release ID, distro
// qualifier ID-VERSION_ID. Without a distribution, or with a distribution
// that is not apk-based, the scanner's PURL stays.
func TestApkPURLs(t *testing.T) {
	db := readFixture(t, "apk/syft_multiple-2_installed")
	chainguard, err := os.ReadFile("testdata/grype_chainguard_os-release")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		osRelease []byte // nil: none
		prefix    string // of every apk PURL
		suffix    string // of every apk PURL
	}{
		{"wolfi", readFixture(t, "osrelease/syft_wolfi_os-release"), "pkg:apk/wolfi/", "&distro=wolfi-20220914"},
		{"chainguard", chainguard, "pkg:apk/chainguard/", "&distro=chainguard-20230214"},
		{"alpine", readFixture(t, "osrelease/trivy_alpine-311_os-release"), "pkg:apk/alpine/", "&distro=alpine-3.11.5"},
		{"no distribution", nil, "pkg:apk/alpine/", "?arch=x86_64"},
		{"not an apk distribution", readFixture(t, "osrelease/claircore_debian-12_os-release"), "pkg:apk/alpine/", "?arch=x86_64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Layer{Digest: digest(0), PackageDBs: []string{"lib/apk/db/installed"}}
			l.Packages = scanWith(t, apk.Scanner{}, "lib/apk/db/installed", db).Packages
			if tc.osRelease != nil {
				res := scanWith(t, osrelease.Scanner{}, "etc/os-release", tc.osRelease)
				l.Distributions = res.Distributions
			}
			r := Coalesce(digest(9), []Layer{l})
			n := 0
			for _, p := range r.Packages {
				if p.Kind != report.KindBinary {
					continue
				}
				n++
				if !strings.HasPrefix(p.PURL, tc.prefix+p.Name+"@") || !strings.HasSuffix(p.PURL, tc.suffix) {
					t.Errorf("%s: PURL %s, want %s%s@...%s", p.Name, p.PURL, tc.prefix, p.Name, tc.suffix)
				}
			}
			if n != len(l.Packages) || n == 0 {
				t.Errorf("%d packages, want %d", n, len(l.Packages))
			}
		})
	}
}
