package conda

import (
	"testing"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "conda", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"}, map[string]bool{
		"opt/conda/conda-meta/pip-22.2.2-py38h06a4308_0.json":              true,
		"opt/conda/envs/testenv/conda-meta/openssl-1.1.1q-h7f8727e_0.json": true,
		"opt/conda/conda-meta/history":                                     false,
		"opt/conda/conda-meta/.json":                                       false,
		"opt/conda/pkgs/pip-22.2.2/info/index.json":                        false,
		"opt/conda/conda-meta/x/pip.json":                                  false,
	})
}

// TestFixtures scans upstream projects' test data (testdata/SOURCES.md):
// the names and versions are those the projects' own tests expect.
func TestFixtures(t *testing.T) {
	cases := []scannertest.Testdata{
		// Trivy pkg/fanal/analyzer/language/conda/meta/meta_test.go,
		// pkg/dependency/parser/conda/meta/parse_test.go and
		// integration/testdata/conda-spdx.json.golden.
		{File: "trivy_pip-22.2.2-py38h06a4308_0.json", Want: []string{"pip 22.2.2 pkg:conda/pip@22.2.2?build=py38h06a4308_0&channel=main&subdir=linux-64&type=conda"}},
		{File: "trivy__libgcc_mutex-0.1-main.json", Want: []string{"_libgcc_mutex 0.1 pkg:conda/_libgcc_mutex@0.1?build=main&channel=main&subdir=linux-64&type=conda"}},
		{File: "trivy_libgomp-11.2.0-h1234567_1.json", Want: []string{"libgomp 11.2.0 pkg:conda/libgomp@11.2.0?build=h1234567_1&channel=main&subdir=linux-64&type=conda"}},
		{File: "trivy_openssl-1.1.1q-h7f8727e_0.json", Want: []string{"openssl 1.1.1q pkg:conda/openssl@1.1.1q?build=h7f8727e_0&channel=main&subdir=linux-64&type=conda"}},
		// Syft syft/pkg/cataloger/conda/cataloger_test.go.
		{File: "syft_jupyterlab-4.4.3-pyhd8ed1ab_0.json", Want: []string{"jupyterlab 4.4.3 pkg:conda/jupyterlab@4.4.3?build=pyhd8ed1ab_0&channel=conda-forge&subdir=noarch&type=conda"}},
		{File: "syft_zlib-1.2.11-h90dfc92_1014.json", Want: []string{"zlib 1.2.11 pkg:conda/zlib@1.2.11?build=h90dfc92_1014&channel=conda-forge&subdir=osx-arm64&type=tar.bz2"}},
		// osv-scalibr extractor/filesystem/language/python/condameta.
		{File: "scalibr_jupyterlab-3.1.12-py39hf3db000_1.json", Want: []string{"jupyterlab 3.1.12 pkg:conda/jupyterlab@3.1.12?build=py39hf3db000&channel=main&subdir=linux-64"}},
	}
	for i := range cases {
		cases[i].Path = "opt/conda/conda-meta/" + cases[i].File
	}
	scannertest.CheckTestdata(t, Scanner{}, cases, func(t *testing.T, p *report.Package) string {
		if _, err := packageurl.FromString(p.PURL); err != nil {
			t.Errorf("purl %q: %v", p.PURL, err)
		}
		return p.Name + " " + p.Version + " " + p.PURL
	})
}

func TestChannelName(t *testing.T) {
	for _, tc := range [][3]string{
		{"https://repo.anaconda.com/pkgs/main/linux-64", "linux-64", "main"},
		{"https://repo.anaconda.com/pkgs/main", "linux-64", "main"},
		{"https://conda.anaconda.org/conda-forge/", "noarch", "conda-forge"},
		{"https://conda.anaconda.org/conda-forge/noarch", "noarch", "conda-forge"},
		{"conda-forge", "linux-64", "conda-forge"},
		{"https://mirror.example.org/conda/internal/linux-64", "linux-64", "https://mirror.example.org/conda/internal"},
		{"", "linux-64", ""},
	} {
		if got := channelName(tc[0], tc[1]); got != tc[2] {
			t.Errorf("channelName(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

// Bad records are skipped with a warning naming them; the others are still
// reported. Only a failure to open or read is an error.
func TestBadInput(t *testing.T) {
	valid := []byte(`{"name":"x","version":"1","build":"a b"}`)
	good := scannertest.File("opt/conda/conda-meta/x-1-0.json", valid)
	if res, err := scannertest.Scan(Scanner{}, good); err != nil || len(res.Packages) != 1 || res.Packages[0].PURL != "pkg:conda/x@1" {
		t.Errorf("good: %+v, %v", res, err)
	}
	scannertest.CheckBadFiles(t, Scanner{}, good, "x", "opt/conda/conda-meta/y-1-0.json", []scannertest.BadFile{
		{Name: "not json", Data: `{"name":`, Warn: "not a conda-meta record"},
		{Name: "array", Data: `[]`, Warn: "not a conda-meta record"},
		{Name: "no name", Data: `{"version":"1"}`, Warn: "name: empty"},
		{Name: "no version", Data: `{"name":"y"}`, Warn: "version: empty"},
		{Name: "bad version", Data: `{"name":"y","version":"1\u0000"}`, Warn: "version"},
	})
	scannertest.CheckSkips(t, scannertest.Skips{Scanner: Scanner{}, Path: "opt/conda/conda-meta/z.json", Limit: MaxFileSize, Valid: valid})
}
