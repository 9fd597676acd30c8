package gobinary

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// goTool returns the go command of this machine.
func goTool(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// run runs a command in dir and fails the test on error.
func run(t testing.TB, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return out
}

// goVersionM is the oracle: what `go version -m` lists for a binary, as
// "path version" lines (mod, and dep with => replacements applied) and
// the vcs build settings.
func goVersionM(t testing.TB, bin string) (mods []string, vcs map[string]string) {
	t.Helper()
	vcs = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(run(t, "", nil, goTool(t), "version", "-m", bin)))
	var last string
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), "\t")
		switch {
		case len(f) >= 3 && (f[0] == "mod" || f[0] == "dep"):
			last = f[1] + " " + f[2]
			mods = append(mods, last)
		case len(f) >= 3 && f[0] == "=>" && len(mods) > 0:
			mods[len(mods)-1] = f[1] + " " + f[2]
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs"):
			k, v, _ := strings.Cut(f[1], "=")
			vcs[k] = v
		}
	}
	return mods, vcs
}

// TestCShared builds a shared library with -buildmode=c-shared from a git
// checkout with one commit and a dependency on a module of this repository's
// module cache (golang.org/x/mod), installs it 0644 in a layer as a library
// is, and compares what the scanner reports with `go version -m`: every
// module, and the vcs settings on the main module's PURL.
func TestCShared(t *testing.T) {
	dir := t.TempDir()
	env := []string{"CGO_ENABLED=1", "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_AUTHOR_DATE=2024-05-01T10:00:00Z", "GIT_COMMITTER_DATE=2024-05-01T10:00:00Z", "GIT_CONFIG_GLOBAL=/dev/null"}
	mustWrite(t, filepath.Join(dir, "go.mod"), "module example.com/cshared\n\ngo 1.22\n\nrequire golang.org/x/mod "+xmodVersion(t)+"\n")
	mustWrite(t, filepath.Join(dir, "lib.go"), `package main

import "C"

import "golang.org/x/mod/semver"

//export Valid
func Valid() bool { return semver.IsValid("v1.2.3") }

func main() {}
`)
	// go.sum from this repository's, which lists golang.org/x/mod.
	sum := scannertest.ReadFile(t, "../../go.sum")
	mustWrite(t, filepath.Join(dir, "go.sum"), string(sum))
	run(t, dir, env, "git", "init", "-q")
	run(t, dir, env, "git", "add", ".")
	run(t, dir, env, "git", "commit", "-q", "-m", "lib")
	lib := filepath.Join(dir, "libcshared.so")
	run(t, dir, env, goTool(t), "build", "-buildmode=c-shared", "-buildvcs=true", "-o", lib, ".")

	wantMods, wantVCS := goVersionM(t, lib)
	if wantVCS["vcs.revision"] == "" || wantVCS["vcs.time"] != "2024-05-01T10:00:00Z" {
		t.Fatalf("go version -m shows no vcs settings: %v", wantVCS)
	}
	body := scannertest.ReadFile(t, lib)
	if keep, _ := (Scanner{}).MatchHead("libcshared.so", body[:scanner.HeadSize]); !keep {
		t.Fatal("c-shared library's head not recognised as Go")
	}
	const path = "usr/lib/x86_64-linux-gnu/libcshared.so"
	res, kept := scannertest.ScanBlob(t, Scanner{}, scannertest.Tar(t, scannertest.LayerFile{Path: path, Mode: 0o644, Body: body}), layer.Options{})
	if !slices.Equal(kept, []string{path}) {
		t.Fatalf("kept %q", kept)
	}
	var got []string
	for _, p := range res.Packages {
		if p.Name != "stdlib" {
			got = append(got, p.Name+" "+p.Version)
		}
	}
	if !slices.Equal(got, wantMods) {
		t.Errorf("modules:\n got  %q\n want %q (go version -m)", got, wantMods)
	}
	main := res.Packages[0]
	for k, v := range wantVCS {
		if !strings.Contains(main.PURL, k+"="+v) {
			t.Errorf("main module PURL %s lacks %s=%s", main.PURL, k, v)
		}
	}
}

func mustWrite(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// xmodVersion is the version of golang.org/x/mod this module requires.
func xmodVersion(t testing.TB) string {
	t.Helper()
	for _, l := range strings.Split(string(scannertest.ReadFile(t, "../../go.mod")), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "golang.org/x/mod" {
			return f[1]
		}
	}
	t.Fatal("golang.org/x/mod not in go.mod")
	return ""
}

func TestVCSPseudoVersion(t *testing.T) {
	rev := "9640d75c13845419f5797e2e3ac3475f8d801d79"
	for _, tc := range []struct {
		settings map[string]string
		want     string
	}{
		{map[string]string{"vcs.revision": rev, "vcs.time": "2024-04-26T06:00:20Z"}, "v0.0.0-20240426060020-9640d75c1384"},
		{map[string]string{"vcs.revision": rev, "vcs.time": "2024-04-26T06:00:20Z", "vcs.modified": "true"}, "v0.0.0-20240426060020-9640d75c1384+dirty"},
		{map[string]string{"vcs.revision": rev, "vcs.time": "2024-04-26T08:00:20+02:00", "vcs.modified": "false"}, "v0.0.0-20240426060020-9640d75c1384"},
		{map[string]string{"vcs.revision": rev}, ""},
		{map[string]string{"vcs.revision": "abc", "vcs.time": "2024-04-26T06:00:20Z"}, ""},
		{map[string]string{"vcs.revision": "ZZZZd75c13845419", "vcs.time": "2024-04-26T06:00:20Z"}, ""},
		{map[string]string{"vcs.revision": rev, "vcs.time": "yesterday"}, ""},
	} {
		bi := &debug.BuildInfo{}
		for _, k := range vcsKeys {
			if v, ok := tc.settings[k]; ok {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
			}
		}
		if got := vcsPseudoVersion(bi); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.settings, got, tc.want)
		}
	}
	// A (devel) main module without -X version gets the pseudo-version.
	bi := &debug.BuildInfo{GoVersion: "go1.22.1", Main: debug.Module{Path: "example.com/x", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: time.Date(2024, 4, 26, 6, 0, 20, 0, time.UTC).Format(time.RFC3339)}}}
	pkgs, err := packages(bi, "x")
	if err != nil {
		t.Fatal(err)
	}
	if got := pkgs[0].Version + " " + pkgs[0].PURL; got != "v0.0.0-20240426060020-9640d75c1384 pkg:golang/example.com/x@v0.0.0-20240426060020-9640d75c1384?vcs=git&vcs.revision="+rev+"&vcs.time=2024-04-26T06:00:20Z" {
		t.Errorf("main module %s", got)
	}
}

// TestOtherFormats cross-builds a Go program for Windows (PE) and macOS
// (Mach-O) and checks that the layer reader keeps them (by the marker) and
// the scanner reports what `go version -m` lists.
func TestOtherFormats(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "go.mod"), "module example.com/cross\n\ngo 1.22\n")
	mustWrite(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() { println(\"hi\") }\n")
	var files []scannertest.LayerFile
	var want []string
	for _, target := range []struct{ goos, out string }{{"windows", "app.exe"}, {"darwin", "app-darwin"}} {
		bin := filepath.Join(dir, target.out)
		run(t, dir, []string{"GOOS=" + target.goos, "GOARCH=amd64", "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off"},
			goTool(t), "build", "-o", bin, ".")
		mods, _ := goVersionM(t, bin)
		p := "opt/" + target.out
		files = append(files, scannertest.LayerFile{Path: p, Mode: 0o644, Body: scannertest.ReadFile(t, bin)})
		for _, m := range mods {
			want = append(want, p+" "+m)
		}
	}
	res, kept := scannertest.ScanBlob(t, Scanner{}, scannertest.Tar(t, files...), layer.Options{})
	if len(kept) != 2 {
		t.Fatalf("kept %q", kept)
	}
	var got []string
	for _, p := range res.Packages {
		if p.Name != "stdlib" {
			got = append(got, p.Filepath+" "+p.Name+" "+p.Version)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || len(got) != 2 {
		t.Errorf("got %q, want %q (go version -m)", got, want)
	}
}
