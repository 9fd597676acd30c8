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
	for _, tc := range []struct {
		file, name, version, warn string
	}{
		{"trivy_kitchen-1.2.6-py2.7.egg", "kitchen", "1.2.6", ""},
		{"trivy_sample_package.egg", "sample_package", "0.1", ""},
		{"scalibr_monotonic-1.6-py3.10.egg", "monotonic", "1.6", ""},
		{"scalibr_monotonic_no_pkginfo-1.6-py3.10.egg", "", "", "no EGG-INFO/PKG-INFO"},
		{"trivy_no-required-files.egg", "", "", "no EGG-INFO/PKG-INFO"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := "usr/lib/python3/site-packages/" + tc.file
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.FromDisk(t, path, filepath.Join("testdata", tc.file))})
			if err != nil {
				t.Fatal(err)
			}
			if tc.warn != "" {
				if len(res.Packages) != 0 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], tc.warn) || !strings.Contains(res.Warnings[0], path) {
					t.Errorf("packages %v, warnings %q", res.Packages, res.Warnings)
				}
				return
			}
			if len(res.Packages) != 1 || len(res.Warnings) != 0 {
				t.Fatalf("packages %v, warnings %q", res.Packages, res.Warnings)
			}
			p := res.Packages[0]
			if p.Name != tc.name || p.Version != tc.version || p.PURL != "pkg:pypi/"+NormalizeName(tc.name)+"@"+tc.version || p.Filepath != path || p.PackageDB != path {
				t.Errorf("got %+v", p)
			}
		})
	}
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
	for _, tc := range []struct {
		name string
		data []byte
		warn string
	}{
		{"not a zip", []byte("Name: x\nVersion: 1\n"), "not a zip archive"},
		{"too many entries", zipOf(t, many), "central directory over the limit"},
		{"bad metadata", zipOf(t, map[string]string{eggPKGINFO: "Version: 1\n"}), "no Name header"},
		{"corrupt member", corrupt, "EGG-INFO/PKG-INFO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const path = "usr/lib/python3/site-packages/x-1.egg"
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(path, tc.data)})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != 0 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], tc.warn) || !strings.Contains(res.Warnings[0], path) {
				t.Errorf("packages %v, warnings %q, want one with %q", res.Packages, res.Warnings, tc.warn)
			}
		})
	}
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
