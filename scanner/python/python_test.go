package python

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "python", Version: "2", Kind: scanner.KindPackage}, map[string]bool{
		"usr/lib/python3.11/site-packages/Flask-2.0.0.dist-info/METADATA":      true,
		"usr/local/lib/python3.9/dist-packages/click-8.0.0.dist-info/METADATA": true,
		"usr/lib/python3/dist-packages/setuptools-51.3.3.egg-info/PKG-INFO":    true,
		"usr/lib/python2.7/lib-dynload/Python-2.7.egg-info":                    true,
		"usr/lib/python3/dist-packages/foo-1.0.egg/EGG-INFO/PKG-INFO":          true,
		"EGG-INFO/PKG-INFO":                                      true,
		"Flask-2.0.0.dist-info/METADATA":                         true,
		"usr/lib/python3/dist-packages/x.dist-info/RECORD":       false,
		"usr/lib/python3/dist-packages/.dist-info/METADATA":      false,
		"usr/lib/python3/dist-packages/x.egg-info/SOURCES.txt":   false,
		"usr/lib/python3/dist-packages/.egg-info":                false,
		"usr/src/project/PKG-INFO":                               false,
		"PKG-INFO":                                               false,
		"usr/share/doc/METADATA":                                 false,
		"usr/lib/python3/dist-packages/x.dist-info/METADATA.bak": false,
		"usr/lib/python3/site-packages/kitchen-1.2.6-py2.7.egg":  true,
		"usr/lib/python3/site-packages/.egg":                     false,
		"usr/lib/python3/site-packages/x.eggs":                   false,
	})
}

// TestFixtures scans the corpus's core-metadata files (aquasecurity/trivy,
// anchore/syft and google/osv-scalibr test data; names and versions from
// testdata/fixtures/SOURCES.md) at the paths they have in an image.
func TestFixtures(t *testing.T) {
	scannertest.CheckLangFixtures(t, Scanner{}, []scannertest.LangFixture{
		{Fixture: "python/trivy_Flask-2.0.0.dist-info_METADATA", Path: "usr/lib/python3.10/site-packages/Flask-2.0.0.dist-info/METADATA", Name: "Flask", Version: "2.0.0", PURL: "pkg:pypi/flask@2.0.0"},
		{Fixture: "python/trivy_click-8.0.0.dist-info_METADATA", Path: "usr/lib/python3.10/site-packages/click-8.0.0.dist-info/METADATA", Name: "click", Version: "8.0.0", PURL: "pkg:pypi/click@8.0.0"},
		{Fixture: "python/trivy_annotated_types-0.7.0.dist-info_METADATA", Path: "usr/lib/python3.10/site-packages/annotated_types-0.7.0.dist-info/METADATA", Name: "annotated-types", Version: "0.7.0", PURL: "pkg:pypi/annotated-types@0.7.0"},
		{Fixture: "python/trivy_setuptools-51.3.3.dist-info_METADATA", Path: "usr/lib/python3.9/site-packages/setuptools-51.3.3.dist-info/METADATA", Name: "setuptools", Version: "51.3.3", PURL: "pkg:pypi/setuptools@51.3.3"},
		{Fixture: "python/trivy_setuptools-51.3.3.egg-info_PKG-INFO", Path: "usr/lib/python3/dist-packages/setuptools-51.3.3.egg-info/PKG-INFO", Name: "setuptools", Version: "51.3.3", PURL: "pkg:pypi/setuptools@51.3.3"},
		{Fixture: "python/trivy_distlib-0.3.1.dist-info_METADATA", Path: "usr/lib/python3.9/site-packages/distlib-0.3.1.dist-info/METADATA", Name: "distlib", Version: "0.3.1", PURL: "pkg:pypi/distlib@0.3.1"},
		{Fixture: "python/trivy_typing_extensions-4.4.0.dist-info_METADATA", Path: "usr/lib/python3.9/site-packages/typing_extensions-4.4.0.dist-info/METADATA", Name: "typing_extensions", Version: "4.4.0", PURL: "pkg:pypi/typing-extensions@4.4.0"},
		{Fixture: "python/trivy_distlib-0.3.1-py3.9.egg-info", Path: "usr/lib/python3.9/site-packages/distlib-0.3.1-py3.9.egg-info", Name: "distlib", Version: "0.3.1", PURL: "pkg:pypi/distlib@0.3.1"},
		{Fixture: "python/trivy_unidecode-egg-info.PKG-INFO", Path: "usr/lib/python3/dist-packages/Unidecode.egg-info/PKG-INFO", Name: "Unidecode", Version: "0.4.1", PURL: "pkg:pypi/unidecode@0.4.1"},
		{Fixture: "python/syft_Python-2.7.egg-info", Path: "usr/lib/python2.7/lib-dynload/Python-2.7.egg-info", Name: "Python", Version: "2.7.13", PURL: "pkg:pypi/python@2.7.13"},
		{Fixture: "python/syft_test.egg-info", Path: "usr/lib/python3/site-packages/test.egg-info", Name: "requests", Version: "2.22.0", PURL: "pkg:pypi/requests@2.22.0"},
		{Fixture: "python/scalibr_pyopenssl-26.0.0.dist-info", Path: "usr/lib/python3/site-packages/pyopenssl-26.0.0.dist-info/METADATA", Name: "pyOpenSSL", Version: "26.0.0", PURL: "pkg:pypi/pyopenssl@26.0.0"},
	})
}

// TestLayerWithBadVersion reads quay/claircore's python/testdata
// layer-with-bad-version.tar through the layer reader: an egg-info whose
// version ("xxx") is not PEP 440, and a zipped egg beside it. The first is
// reported as written: matching decides what a version means, the scanner
// does not drop the package. The zipped egg's EGG-INFO/PKG-INFO says
// mypackage 0.1.0.0.0 (as Python's importlib.metadata reads it).
func TestLayerWithBadVersion(t *testing.T) {
	blob := scannertest.ReadFixture(t, "python/claircore_layer-with-bad-version.tar")
	res, _ := scannertest.ScanBlob(t, Scanner{}, blob, layer.Options{})
	if len(res.Packages) != 2 || len(res.Warnings) != 0 {
		t.Fatalf("%d packages, warnings %q", len(res.Packages), res.Warnings)
	}
	egg, p := res.Packages[0], res.Packages[1]
	if egg.Name != "mypackage" || egg.Version != "0.1.0.0.0" || egg.PURL != "pkg:pypi/mypackage@0.1.0.0.0" ||
		!strings.HasSuffix(egg.Filepath, "/diff/mypackage-0.1.0.0.0-py3.9.egg") || egg.PackageDB != egg.Filepath {
		t.Errorf("got %+v", egg)
	}
	if p.Name != "mypackage" || p.Version != "xxx" || p.PURL != "pkg:pypi/mypackage@xxx" ||
		!strings.HasSuffix(p.Filepath, "/diff/mypackage.egg-info/PKG-INFO") || p.PackageDB != p.Filepath {
		t.Errorf("got %+v", p)
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"Flask":             "flask",
		"typing_extensions": "typing-extensions",
		"zope.interface":    "zope-interface",
		"A__b-._C":          "a-b-c",
		"ruamel.yaml.clib":  "ruamel-yaml-clib",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGiganticMetadata: a METADATA file of 300 MiB (a description of that
// size, or headers that never end) is not read whole: what is read is
// bounded by MaxHeaderBytes plus a buffer.
func TestGiganticMetadata(t *testing.T) {
	const size = 300 << 20
	for _, tc := range []struct {
		name    string
		head    string
		line    string
		wantPkg bool
	}{
		{"huge description", "Metadata-Version: 2.1\nName: big\nVersion: 1.0\n\n", "A very long description. ", true},
		{"headers never end", "Name: big\nVersion: 1.0\n", "X-Filler: aaaaaaaaaaaaaaaaaaaa\n", true},
		{"one endless line", "Metadata-Version: 2.1\nSummary: ", "a", false},
		{"endless continuation", "Name: big\nDescription: x\n", "        more\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cr *scannertest.CountingReader
			f := scannertest.FileFunc("usr/lib/python3/site-packages/big-1.0.dist-info/METADATA", size, func() (io.ReadCloser, error) {
				cr = &scannertest.CountingReader{R: io.MultiReader(strings.NewReader(tc.head), scannertest.Repeat([]byte(tc.line)))}
				return io.NopCloser(cr), nil
			})
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{f})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.Packages) == 1; got != tc.wantPkg {
				t.Errorf("packages %v, warnings %q", res.Packages, res.Warnings)
			}
			if !tc.wantPkg && (len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "big-1.0.dist-info/METADATA")) {
				t.Errorf("warnings %q", res.Warnings)
			}
			if cr.N > MaxHeaderBytes+maxLine {
				t.Errorf("read %d bytes of a %d-byte file", cr.N, int64(size))
			}
		})
	}
}

// Bad files are skipped with a warning naming them; the others are still
// reported. Only a failure to read is an error.
func TestBadInput(t *testing.T) {
	good := scannertest.File("a/good-1.dist-info/METADATA", []byte("Name: good\nVersion: 1\n"))
	scannertest.CheckBadFiles(t, Scanner{}, good, "good", "a/bad-1.dist-info/METADATA", []scannertest.BadFile{
		{Name: "empty", Data: "", Warn: "no Name header"},
		{Name: "no version", Data: "Metadata-Version: 2.1\nName: x\n\nVersion: 1\n", Warn: "no Version header"},
		{Name: "invalid UTF-8 name", Data: "Name: caf\xe9\nVersion: 1\n", Warn: "not valid UTF-8"},
		{Name: "invalid UTF-8 version", Data: "Name: x\nVersion: 1\xff\n", Warn: "not valid UTF-8"},
		{Name: "blank in version", Data: "Name: x\nVersion: 1 2\n", Warn: "blanks or control"},
		{Name: "NUL in name", Data: "Name: x\x00y\nVersion: 1\n", Warn: "blanks or control"},
		{Name: "empty name", Data: "Name:\nVersion: 1\n", Warn: "Name: empty"},
		{Name: "binary", Data: "\x7fELF\x02\x01\x01\x00\x00\x00", Warn: "no Name header"},
		{Name: "body before name", Data: "Metadata-Version: 2.1\nthis is not a header\nName: x\nVersion: 1\n", Warn: "no Name header"},
		{Name: "long name line", Data: "Name: " + strings.Repeat("n", 70<<10) + "\nVersion: 1\n", Warn: "Name longer than"},
	})

	// Headers: case-insensitive names, CRLF, continuation lines, first
	// value wins.
	md, err := ParseMetadata(strings.NewReader("metadata-version: 1.0\r\nDescription: a\r\n  Name: no\r\nNAME: yes\r\nversion:  2.0 \r\nName: again\r\n"))
	if err != nil || md != (Metadata{Name: "yes", Version: "2.0"}) {
		t.Errorf("ParseMetadata = %+v, %v", md, err)
	}

	// A read error is an error, naming the file.
	broken := scannertest.FileFunc("a/x.dist-info/METADATA", 10, func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(strings.NewReader("Name: x\n"), errReader{})), nil
	})
	if _, err := (Scanner{}).Scan(context.Background(), []scanner.File{broken}); !errors.Is(err, errBroken) || !strings.Contains(err.Error(), "a/x.dist-info/METADATA") {
		t.Errorf("read error: %v", err)
	}
	unopenable := scannertest.FileFunc("a/y.dist-info/METADATA", 10, func() (io.ReadCloser, error) { return nil, errBroken })
	if _, err := (Scanner{}).Scan(context.Background(), []scanner.File{unopenable}); !errors.Is(err, errBroken) || !strings.Contains(err.Error(), "a/y.dist-info/METADATA") {
		t.Errorf("open error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Scanner{}).Scan(ctx, []scanner.File{good}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

var errBroken = errors.New("disk on fire")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }
