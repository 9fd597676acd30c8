package python

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// TestEggs reads zipped eggs of upstream projects' test data
// (testdata/SOURCES.md). The expected names and versions are those of
// Trivy's and osv-scalibr's tests, and what Python's importlib.metadata
// reads from the same files; an egg without EGG-INFO/PKG-INFO (for which
// neither tool reports a package) is skipped with a warning.
func TestEggs(t *testing.T) {
	const dir = "usr/lib/python3/site-packages/"
	cases := []scannertest.Testdata{
		{File: "trivy_kitchen-1.2.6-py2.7.egg", Want: []string{"kitchen 1.2.6 pkg:pypi/kitchen@1.2.6"}},
		{File: "trivy_sample_package.egg", Want: []string{"sample_package 0.1 pkg:pypi/sample-package@0.1"}},
		{File: "scalibr_monotonic-1.6-py3.10.egg", Want: []string{"monotonic 1.6 pkg:pypi/monotonic@1.6"}},
		{File: "scalibr_monotonic_no_pkginfo-1.6-py3.10.egg", Warn: "no EGG-INFO/PKG-INFO"},
		{File: "trivy_no-required-files.egg", Warn: "no EGG-INFO/PKG-INFO"},
	}
	for i := range cases {
		cases[i].Path = dir + cases[i].File
	}
	scannertest.CheckTestdata(t, Scanner{}, cases, nil)
}

// zipOf makes a zip archive of the named members.
func zipOf(t testing.TB, members map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range members {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Bad eggs are skipped with a warning naming them.
func TestBadEggs(t *testing.T) {
	// A central directory over MaxEggDirectoryBytes: 300 entries of
	// 60,000-byte names (quicker to build than MaxEggEntries entries).
	many := map[string]string{eggPKGINFO: "Name: x\nVersion: 1\n"}
	for i := range 300 {
		many[fmt.Sprintf("%060000d", i)] = ""
	}
	kitchen := scannertest.ReadFile(t, filepath.Join("testdata", "trivy_kitchen-1.2.6-py2.7.egg"))
	corrupt := bytes.Clone(kitchen)
	// Damage the compressed PKG-INFO: its local header is the first.
	for i := 100; i < 400; i++ {
		corrupt[i] ^= 0x5a
	}
	good := scannertest.File("usr/lib/python3/site-packages/good-1.egg", zipOf(t, map[string]string{eggPKGINFO: "Name: good\nVersion: 1\n"}))
	scannertest.CheckBadFiles(t, Scanner{}, good, "good", "usr/lib/python3/site-packages/x-1.egg", []scannertest.BadFile{
		{Name: "not a zip", Data: "Name: x\nVersion: 1\n", Warn: "not a zip archive"},
		{Name: "too many entries", Data: string(zipOf(t, many)), Warn: "central directory over the limit"},
		{Name: "bad metadata", Data: string(zipOf(t, map[string]string{eggPKGINFO: "Version: 1\n"})), Warn: "no Name header"},
		{Name: "corrupt member", Data: string(corrupt), Warn: "EGG-INFO/PKG-INFO"},
	})
	big := scannertest.FileFunc("a/big.egg", MaxEggSize+1, func() (io.ReadCloser, error) {
		t.Error("opened an egg over the limit")
		return nil, errBroken
	})
	if res, err := (Scanner{}).Scan(context.Background(), []scanner.File{big}); err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "more than the limit") {
		t.Errorf("big egg: %+v, %v", res, err)
	}
}

// FuzzEgg is seeded with the testdata's zipped eggs (Trivy and osv-scalibr
// test data): any content is a package or a warning naming the file.
func FuzzEgg(f *testing.F) {
	l := scannertest.Lang{Scanner: Scanner{}, Path: "usr/lib/python3/site-packages/x-1.egg", PURLPrefix: "pkg:pypi/", One: true}
	scannertest.FuzzLang(f, l, "*.egg")
}
