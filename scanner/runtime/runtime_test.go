package runtime

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// snippet returns the binary bytes of a Syft snippet file (after its
// header, when it has one), between NULs as they sit in the binary.
func snippet(t testing.TB, name string) []byte {
	t.Helper()
	b := scannertest.ReadFile(t, filepath.Join("testdata/syft", name))
	const sep = "### byte snippet to follow ###\n"
	if i := bytes.Index(b, []byte(sep)); i >= 0 {
		b = b[i+len(sep):]
	}
	return append(append([]byte{0}, b...), 0)
}

func view(pkgs []*report.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+" "+p.Version+" "+p.PURL+" "+p.Filepath)
	}
	return out
}

func scan(t testing.TB, files ...scanner.File) *scanner.Result {
	t.Helper()
	s := Scanner{}
	for _, f := range files {
		if !s.Match(f.Path()) && !s.MatchFile(f.Path(), 0o644, f.Size()) {
			t.Errorf("Match(%s) and MatchFile = false", f.Path())
		}
	}
	res, err := s.Scan(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMatch(t *testing.T) {
	s := Scanner{}
	if got := s.Info(); got != (scanner.Info{Name: "runtime", Version: "1", Kind: scanner.KindPackage}) {
		t.Errorf("Info() = %+v", got)
	}
	for p, want := range map[string]bool{
		"usr/local/bin/python3.12":                  true,
		"usr/bin/python2.7":                         true,
		"usr/local/bin/python3":                     false, // a link to python3.X in practice
		"usr/local/bin/python3.12-config":           false,
		"usr/local/bin/node":                        true,
		"opt/java/openjdk/bin/java":                 true,
		"opt/java/openjdk/release":                  false, // MatchFile's
		"usr/local/go/bin/go":                       true,
		"usr/local/go/VERSION":                      false, // MatchFile's
		"usr/local/bin/ruby":                        true,
		"usr/local/bin/php":                         true,
		"usr/local/lib/libpython3.12.so.1.0":        true,
		"usr/lib/x86_64-linux-gnu/libpython3.7m.so": true,
		"usr/local/lib/libruby.so.3.2.2":            true,
		"usr/local/lib/libruby.so":                  true,
		"usr/share/node/node":                       false, // not in a bin directory
		"usr/local/bin/nodejs.md":                   false,
		"usr/lib/python3.12/os.py":                  false,
		"usr/lib/libpython3.12.a":                   false,
	} {
		if got := s.Match(p); got != want {
			t.Errorf("Match(%s) = %v", p, got)
		}
	}
	for _, tc := range []struct {
		path string
		mode fs.FileMode
		size int64
		want bool
	}{
		{"opt/java/openjdk/release", 0o644, 1603, true},
		{"usr/local/go/VERSION", 0o644, 35, true},
		{"usr/local/go/VERSION", 0o644, MaxMetadataSize, true},
		{"usr/local/go/VERSION", 0o644, MaxMetadataSize + 1, false},
		{"usr/local/go/VERSION", fs.ModeSymlink | 0o777, 35, false},
		{"usr/local/go/VERSION.txt", 0o644, 35, false},
		{"usr/local/bin/node", 0o755, 1 << 20, false},
	} {
		if got := s.MatchFile(tc.path, tc.mode, tc.size); got != tc.want {
			t.Errorf("MatchFile(%s, %v, %d) = %v", tc.path, tc.mode, tc.size, got)
		}
	}
	if keep, marker := s.MatchHead("usr/local/go/VERSION", []byte("go1.22.1\n")); !keep || marker != nil {
		t.Errorf("MatchHead = %v, %q", keep, marker)
	}
}

// TestSyftSnippets reads the version strings of real binaries (Syft's
// snippets) as the scanner finds them in a layer.
func TestSyftSnippets(t *testing.T) {
	for _, tc := range []struct {
		snippet, path string
		want          string // "name version purl"
	}{
		{"node_19.2.0.snippet", "usr/local/bin/node", "node 19.2.0 pkg:generic/node@19.2.0"},
		{"node_4.9.1.snippet", "usr/local/bin/node", "node 4.9.1 pkg:generic/node@4.9.1"},
		{"node_0.10.48.snippet", "usr/local/bin/node", "node 0.10.48 pkg:generic/node@0.10.48"},
		{"python_3.6.3.snippet", "usr/local/bin/python3.6", "python 3.6.3 pkg:generic/python@3.6.3"},
		{"python-with-incorrect-match_3.5.3.snippet", "usr/local/bin/python3.5", "python 3.5.3 pkg:generic/python@3.5.3"},
		{"ruby_1.9.3p551.snippet", "usr/local/bin/ruby", "ruby 1.9.3p551 pkg:generic/ruby@1.9.3p551"},
		{"php-apache_8.2.1.snippet", "usr/local/bin/php", "php 8.2.1 pkg:generic/php@8.2.1"},
	} {
		res := scan(t, scannertest.File(tc.path, snippet(t, tc.snippet)))
		if got, want := view(res.Packages), []string{tc.want + " " + tc.path}; !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", tc.snippet, got, want)
		}
	}
	// A python binary without its version, with its shared library (a
	// build with --enable-shared) in the layer.
	res := scan(t,
		scannertest.File("usr/local/bin/python3.7", []byte("\x00no version here\x00")),
		scannertest.File("usr/local/lib/libpython3.7m.so.1.0", snippet(t, "python-shared-lib_3.7.4.snippet")),
		scannertest.File("usr/local/lib/libpython3.6m.so.1.0", snippet(t, "python_3.6.3.snippet")))
	if got, want := view(res.Packages), []string{"python 3.7.4 pkg:generic/python@3.7.4 usr/local/bin/python3.7"}; !slices.Equal(got, want) {
		t.Errorf("shared library: %q, want %q", got, want)
	}
	// The version of another Python, or a library alone, is not reported.
	res = scan(t,
		scannertest.File("usr/local/bin/python3.8", snippet(t, "python_3.6.3.snippet")),
		scannertest.File("usr/local/lib/libpython3.7m.so.1.0", snippet(t, "python-shared-lib_3.7.4.snippet")))
	if len(res.Packages) != 0 {
		t.Errorf("packages %q", view(res.Packages))
	}
}

// TestJDKAndGo reads real JDK release files and a Go VERSION file with
// their executables.
func TestJDKAndGo(t *testing.T) {
	for _, tc := range []struct {
		file, want string
	}{
		{"jdk/syft_temurin-21.0.4_release", "openjdk 21.0.4 pkg:generic/openjdk@21.0.4?implementor=Eclipse%20Adoptium"},
		{"jdk/syft_oracle-jdk-8_release", "openjdk 1.8.0_411 pkg:generic/openjdk@1.8.0_411"},
		{"jdk/temurin-25.0.3_release", "openjdk 25.0.3 pkg:generic/openjdk@25.0.3?implementor=Eclipse%20Adoptium"},
		{"jdk/debian-openjdk-17.0.15_release", "openjdk 17.0.15 pkg:generic/openjdk@17.0.15?implementor=Debian"},
	} {
		res := scan(t,
			scannertest.File("opt/java/openjdk/release", scannertest.ReadFile(t, filepath.Join("testdata", tc.file))),
			scannertest.File("opt/java/openjdk/bin/java", []byte("\x7fELF launcher")))
		if got, want := view(res.Packages), []string{tc.want + " opt/java/openjdk/bin/java"}; !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", tc.file, got, want)
		}
	}
	res := scan(t,
		scannertest.File("usr/local/go/VERSION", scannertest.ReadFile(t, "testdata/go/go1.26.8_VERSION")),
		scannertest.File("usr/local/go/bin/go", []byte("\x7fELF")))
	if got, want := view(res.Packages), []string{"go 1.26.8 pkg:generic/go@1.26.8 usr/local/go/bin/go"}; !slices.Equal(got, want) {
		t.Errorf("go: %q, want %q", got, want)
	}
	// Without the executable, or without the metadata file, or with one
	// that says nothing: no package.
	for name, files := range map[string][]scanner.File{
		"release alone":   {scannertest.File("opt/jdk/release", scannertest.ReadFile(t, "testdata/jdk/temurin-25.0.3_release"))},
		"java alone":      {scannertest.File("opt/jdk/bin/java", []byte("x"))},
		"another release": {scannertest.File("opt/jdk/release", []byte("VERSION=1\n")), scannertest.File("opt/jdk/bin/java", []byte("x"))},
		"VERSION alone":   {scannertest.File("usr/local/go/VERSION", []byte("go1.22.1\n"))},
		"devel VERSION":   {scannertest.File("usr/local/go/VERSION", []byte("devel go1.23-abc\n")), scannertest.File("usr/local/go/bin/go", []byte("x"))},
	} {
		if res := scan(t, files...); len(res.Packages) != 0 {
			t.Errorf("%s: %q", name, view(res.Packages))
		}
	}
	// A release file over the limit is not kept (MatchFile), and Scan,
	// given one anyway, skips it with a warning.
	big := append([]byte("JAVA_VERSION=\"1\"\n"), make([]byte, MaxMetadataSize)...)
	if (Scanner{}).MatchFile("opt/jdk/release", 0o644, int64(len(big))) {
		t.Error("MatchFile took a release file over the limit")
	}
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{
		scannertest.File("opt/jdk/release", big), scannertest.File("opt/jdk/bin/java", []byte("x"))})
	if err != nil || len(res.Packages) != 0 || len(res.Warnings) != 1 {
		t.Errorf("release too big: %v, %v", res, err)
	}
}

// command runs a runtime's version command, the oracle.
func command(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestHostRuntimes reads the runtimes of this machine (Debian's Python and
// Node.js, the Go toolchain running the test, the JDK on the PATH) and
// compares each version with what the runtime's own version command prints.
func TestHostRuntimes(t *testing.T) {
	goroot := strings.TrimSpace(command(t, "go", "env", "GOROOT"))
	javaHome := filepath.Dir(filepath.Dir(mustEval(t, mustLook(t, "java"))))
	// The interpreter python3 runs (past pyenv's shims), and its shared
	// library when it was built with one.
	py := strings.Fields(command(t, "python3", "-c", "import os, sys, sysconfig; "+
		"print(os.path.realpath(sys.executable), '%d.%d' % sys.version_info[:2], "+
		"os.path.join(sysconfig.get_config_var('LIBDIR') or '', sysconfig.get_config_var('INSTSONAME') or 'none'))"))
	if len(py) != 3 {
		t.Fatalf("python3: %q", py)
	}
	pyName := "python" + py[1]
	pyFiles := map[string]string{"usr/local/bin/" + pyName: filepath.Join(filepath.Dir(py[0]), pyName)}
	if _, err := os.Stat(py[2]); err == nil && strings.Contains(filepath.Base(py[2]), ".so") {
		pyFiles["usr/local/lib/"+filepath.Base(py[2])] = py[2]
	}
	node := mustEval(t, mustLook(t, "node"))
	// Debian's own interpreter, whatever its minor version (python3.11 on
	// Debian 12, python3.13 on Debian 13).
	sysPy := mustEval(t, "/usr/bin/python3")
	sysPyPath := "usr/bin/" + filepath.Base(sysPy)
	for _, tc := range []struct {
		name  string
		files map[string]string // layer path: host path
		key   string            // the package's path
		want  *regexp.Regexp    // on the oracle's output, the version
		out   string
	}{
		{"go", map[string]string{"usr/local/go/VERSION": goroot + "/VERSION", "usr/local/go/bin/go": goroot + "/bin/go"}, "usr/local/go/bin/go",
			regexp.MustCompile(`go version go(\S+) `), command(t, "go", "version")},
		{"openjdk", map[string]string{"opt/java/release": javaHome + "/release", "opt/java/bin/java": javaHome + "/bin/java"}, "opt/java/bin/java",
			regexp.MustCompile(`version "([^"]+)"`), command(t, javaHome+"/bin/java", "-version")},
		{"python", pyFiles, "usr/local/bin/" + pyName,
			regexp.MustCompile(`Python (\S+)`), command(t, "python3", "--version")},
		{"python", map[string]string{sysPyPath: sysPy}, sysPyPath,
			regexp.MustCompile(`Python (\S+)`), command(t, sysPy, "--version")},
		{"node", map[string]string{"usr/local/bin/node": node}, "usr/local/bin/node",
			regexp.MustCompile(`v(\S+)`), command(t, node, "--version")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files []scanner.File
			for lp, hp := range tc.files {
				files = append(files, scannertest.File(lp, scannertest.ReadFile(t, hp)))
			}
			res := scan(t, files...)
			m := tc.want.FindStringSubmatch(tc.out)
			if m == nil {
				t.Fatalf("oracle output %q", tc.out)
			}
			want := []string{tc.name + " " + m[1] + " pkg:generic/" + tc.name + "@" + m[1]}
			var got []string
			for _, p := range res.Packages {
				purl, _, _ := strings.Cut(p.PURL, "?")
				got = append(got, p.Name+" "+p.Version+" "+purl)
				if p.Filepath != tc.key {
					t.Errorf("Filepath %s, want %s", p.Filepath, tc.key)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q (the runtime's own version command)", got, want)
			}
		})
	}
}

func mustLook(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("this test needs %s on the PATH: %v", name, err)
	}
	return p
}

func mustEval(t testing.TB, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFindAcrossWindows puts a version string across Find's window
// boundary, at the start and at the end of the data.
func TestFindAcrossWindows(t *testing.T) {
	s := "\x00node.js/v22.9.0\x00"
	for _, at := range []int{0, window - 5, window - 1, window, 3*window - 3, 3*window + 100 - len(s)} {
		data := make([]byte, 3*window+100)
		copy(data[at:], s)
		got, err := Find(bytes.NewReader(data), nodeVersion)
		if err != nil || got != "22.9.0" {
			t.Errorf("at %d: %q, %v", at, got, err)
		}
	}
	got, err := Find(bytes.NewReader(make([]byte, 2*window)), nodeVersion)
	if err != nil || got != "" {
		t.Errorf("no version: %q, %v", got, err)
	}
	// The first of two versions wins.
	got, _ = Find(strings.NewReader("\x00v4.9.1\x00 node.js/v19.2.0"), nodeVersion)
	if got != "4.9.1" {
		t.Errorf("first: %q", got)
	}
}

func TestParseRelease(t *testing.T) {
	got := ParseRelease([]byte("# comment\nJAVA_VERSION=\"17.0.1\"\nIMPLEMENTOR=\"A \\\"B\\\"\"\nBARE=x y\nJAVA_VERSION=\"2\"\nnot an assignment\n=x\n"))
	want := map[string]string{"JAVA_VERSION": "17.0.1", "IMPLEMENTOR": `A "B"`, "BARE": "x y"}
	if len(got) != len(want) {
		t.Errorf("%q", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// FuzzParseRelease: any release file parses; a version found is valid.
func FuzzParseRelease(f *testing.F) {
	f.Add(scannertest.ReadFile(f, "testdata/jdk/temurin-25.0.3_release"))
	f.Add([]byte("JAVA_VERSION=\"1\\x\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseRelease(b)
		res, err := Scanner{}.Scan(context.Background(), []scanner.File{
			scannertest.File("j/release", b), scannertest.File("j/bin/java", nil),
			scannertest.File("g/VERSION", b), scannertest.File("g/bin/go", nil)})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.Packages {
			if p.Version == "" || strings.ContainsAny(p.Version, " \n\x00") {
				t.Fatalf("version %q", p.Version)
			}
		}
	})
}

// FuzzFind: whatever the binary, Find ends, and a version it finds is in
// the data.
func FuzzFind(f *testing.F) {
	f.Add([]byte("\x00node.js/v19.2.0\x00"), "3.11")
	f.Add(snippet(f, "python_3.6.3.snippet"), "3.6")
	f.Add(snippet(f, "ruby_1.9.3p551.snippet"), "2.7")
	f.Fuzz(func(t *testing.T, data []byte, xy string) {
		if !regexp.MustCompile(`^[23]\.[0-9]{1,3}$`).MatchString(xy) {
			xy = "3.11"
		}
		for _, pat := range []Pattern{nodeVersion, rubyVersion, phpVersion, pythonVersion(xy)} {
			v, err := Find(bytes.NewReader(data), pat)
			if err != nil || (v != "" && !bytes.Contains(data, []byte(v))) {
				t.Fatalf("%q, %v", v, err)
			}
		}
	})
}
