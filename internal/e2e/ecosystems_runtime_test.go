package e2e_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testdataOf reads a file of another package's testdata (its SOURCES.md
// says where it comes from).
func testdataOf(t *testing.T, pkg, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../..", pkg, "testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syftSnippet returns the binary bytes of one of scanner/runtime's Syft
// snippets, between NULs as in the binary.
func syftSnippet(t *testing.T, name string) []byte {
	t.Helper()
	b := testdataOf(t, "scanner/runtime", "syft/"+name)
	const sep = "### byte snippet to follow ###\n"
	if i := bytes.Index(b, []byte(sep)); i >= 0 {
		b = b[i+len(sep):]
	}
	return append(append([]byte{0}, b...), 0)
}

// runtimeImage is a Debian image whose dpkg owns a Python 3.6 interpreter,
// with an OpenJDK, a Go toolchain, Node.js, Ruby, PHP and a Python 3.7
// (built with a shared library) copied in by a second layer.
func runtimeImage(t *testing.T) (base, copied []tarFile) {
	status := []byte("Package: python3.6-minimal\nStatus: install ok installed\nPriority: optional\nSection: python\n" +
		"Installed-Size: 5000\nMaintainer: Matthias Klose <doko@debian.org>\nArchitecture: amd64\n" +
		"Source: python3.6\nVersion: 3.6.3-1\nDescription: Minimal subset of the Python language (version 3.6)\n\n")
	base = []tarFile{
		{"etc/os-release", 0o644, fixture(t, "osrelease/claircore_debian-12_os-release")},
		{"var/lib/dpkg/status", 0o644, status},
		{"var/lib/dpkg/info/python3.6-minimal.list", 0o644, []byte("/.\n/usr\n/usr/bin\n/usr/bin/python3.6\n")},
		{"usr/bin/python3.6", 0o755, syftSnippet(t, "python_3.6.3.snippet")},
	}
	copied = []tarFile{
		{"opt/java/openjdk/release", 0o644, testdataOf(t, "scanner/runtime", "jdk/temurin-25.0.3_release")},
		{"opt/java/openjdk/bin/java", 0o755, []byte("java launcher")},
		{"usr/local/go/VERSION", 0o644, testdataOf(t, "scanner/runtime", "go/go1.26.8_VERSION")},
		{"usr/local/go/bin/go", 0o755, []byte("go command")},
		{"usr/local/bin/node", 0o755, syftSnippet(t, "node_19.2.0.snippet")},
		{"usr/local/bin/ruby", 0o755, syftSnippet(t, "ruby_1.9.3p551.snippet")},
		{"usr/local/bin/php", 0o755, syftSnippet(t, "php-apache_8.2.1.snippet")},
		{"usr/local/bin/python3.7", 0o755, []byte("\x00python launcher\x00")},
		{"usr/local/lib/libpython3.7m.so.1.0", 0o644, syftSnippet(t, "python-shared-lib_3.7.4.snippet")},
	}
	return base, copied
}

// TestRuntimes indexes an image with language runtimes through the
// pipeline: the copied ones are reported with the version they state, at
// their executable's path; the Python that dpkg installed is reported once,
// as dpkg's package.
func TestRuntimes(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(2, true))
	base, copied := runtimeImage(t)
	m := h.pushTars("runtimes:1", base, copied)
	want := []string{
		"go 1.26.8 pkg:generic/go@1.26.8 usr/local/go/bin/go 1",
		"node 19.2.0 pkg:generic/node@19.2.0 usr/local/bin/node 1",
		"openjdk 25.0.3 pkg:generic/openjdk@25.0.3?implementor=Eclipse%20Adoptium opt/java/openjdk/bin/java 1",
		"php 8.2.1 pkg:generic/php@8.2.1 usr/local/bin/php 1",
		"python 3.7.4 pkg:generic/python@3.7.4 usr/local/bin/python3.7 1",
		"python3.6-minimal 3.6.3-1 pkg:deb/debian/python3.6-minimal@3.6.3-1?arch=amd64 var/lib/dpkg/status 0",
		"ruby 1.9.3p551 pkg:generic/ruby@1.9.3p551 usr/local/bin/ruby 1",
	}
	h.checkReported(t, m, want)

	// Control: without dpkg's file list, nothing says who owns
	// usr/bin/python3.6, and the runtime scanner's Python is reported.
	m = h.pushTars("runtimes:nolist", slices.DeleteFunc(slices.Clone(base), func(f tarFile) bool {
		return f.path == "var/lib/dpkg/info/python3.6-minimal.list"
	}))
	if got := reported(h.indexAndWait(m), m); !slices.Contains(got, "python 3.6.3 pkg:generic/python@3.6.3 usr/bin/python3.6 0") {
		t.Errorf("control image: %q", got)
	}

	// apk's file list (F:, R: lines) owns a Python too: alpine:3.10's
	// database (aquasecurity/trivy) with a python3 entry added.
	db := append(fixture(t, "apk/trivy_alpine-310_installed"), []byte("\nP:python3\nV:3.6.3-r0\nA:x86_64\nF:usr\nF:usr/bin\nR:python3.6\n")...)
	m = h.pushTars("runtimes:alpine", []tarFile{
		{"etc/os-release", 0o644, fixture(t, "osrelease/trivy_alpine-310_os-release")},
		{"lib/apk/db/installed", 0o644, db},
		{"usr/bin/python3.6", 0o755, syftSnippet(t, "python_3.6.3.snippet")},
		{"usr/local/bin/node", 0o755, syftSnippet(t, "node_19.2.0.snippet")},
	})
	got := reported(h.indexAndWait(m), m)
	for _, p := range got {
		if strings.HasPrefix(p, "python ") {
			t.Errorf("apk's python3.6 reported by the runtime scanner: %s", p)
		}
	}
	for _, w := range []string{
		"node 19.2.0 pkg:generic/node@19.2.0 usr/local/bin/node 0",
		"python3 3.6.3-r0 pkg:apk/alpine/python3@3.6.3-r0?arch=x86_64&distro=alpine-3.10.4 lib/apk/db/installed 0",
	} {
		if !slices.Contains(got, w) {
			t.Errorf("%s not reported: %q", w, got)
		}
	}
}
