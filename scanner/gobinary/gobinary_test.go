package gobinary

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// hostELF returns a non-Go ELF executable of this machine (a Debian system
// has /usr/bin/true, built from C).
func hostELF(t testing.TB) []byte {
	t.Helper()
	for _, p := range []string{"/usr/bin/true", "/bin/true"} {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	t.Fatal("this test needs a non-Go ELF executable: /usr/bin/true (coreutils) is missing")
	return nil
}

func TestInfoMatch(t *testing.T) {
	s := Scanner{}
	if got := s.Info(); got != (scanner.Info{Name: "gobinary", Version: "2", Kind: scanner.KindPackage}) {
		t.Errorf("Info() = %+v", got)
	}
	if s.Match("usr/local/bin/app") {
		t.Error("Match by path")
	}
	for _, tc := range []struct {
		mode fs.FileMode
		size int64
		want bool
	}{
		{0o755, 1 << 20, true},
		{0o700, 1 << 20, true},
		{0o701, 1 << 20, true},
		{0o644, 1 << 20, true},
		{0o444, 1 << 20, true},
		{0o755 | fs.ModeSymlink, 1 << 20, false},
		{0o755 | fs.ModeDir, 1 << 20, false},
		{0o755, 63, false},
		{0o755, 64, true},
		{0o755, MaxFileSize, true},
		{0o755, MaxFileSize + 1, false},
	} {
		if got := s.MatchFile("x", tc.mode, tc.size); got != tc.want {
			t.Errorf("MatchFile(%v, %d) = %v", tc.mode, tc.size, got)
		}
	}
}

// goFixtures are the corpus's Go binaries (aquasecurity/trivy and
// google/osv-scalibr test data) with what `go version -m` prints for them
// (and testdata/fixtures/SOURCES.md says): main module, dependencies (as
// built: a replaced module is its replacement), toolchain.
var goFixtures = []struct {
	fixture, path string
	want          []string // "name version purl"
}{
	{"gobin/trivy_main-version-via-ldflags.elf", "usr/local/bin/test", []string{
		// "(devel)", with -ldflags "-X main.version=v1.0.0"; built from a
		// modified git checkout.
		"github.com/aquasecurity/test v1.0.0 pkg:golang/github.com/aquasecurity/test@v1.0.0?vcs=git&vcs.modified=true&vcs.revision=9640d75c13845419f5797e2e3ac3475f8d801d79&vcs.time=2024-04-26T06:00:20Z",
		"stdlib go1.22.1 pkg:golang/stdlib@1.22.1",
	}},
	{"gobin/trivy_goexperiment", "usr/bin/goexperiment", []string{
		// Built from files: no main module. "go1.22.1 X:loopvar".
		"stdlib go1.22.1 pkg:golang/stdlib@1.22.1",
	}},
	{"gobin/trivy_test.elf", "opt/test/test.elf", []string{
		// go1.15: build information before Go 1.18's format.
		"github.com/aquasecurity/test (devel) pkg:golang/github.com/aquasecurity/test",
		"github.com/aquasecurity/go-pep440-version v0.0.0-20210121094942-22b2f8951d46 pkg:golang/github.com/aquasecurity/go-pep440-version@v0.0.0-20210121094942-22b2f8951d46",
		"github.com/aquasecurity/go-version v0.0.0-20210121072130-637058cfe492 pkg:golang/github.com/aquasecurity/go-version@v0.0.0-20210121072130-637058cfe492",
		"golang.org/x/xerrors v0.0.0-20200804184101-5ec99f83aff1 pkg:golang/golang.org/x/xerrors@v0.0.0-20200804184101-5ec99f83aff1",
		"stdlib go1.15.2 pkg:golang/stdlib@1.15.2",
	}},
	{"gobin/scalibr_binary_with_module_replacement-linux-amd64", "app/binary_with_module_replacement", []string{
		"binary_with_module_replacement (devel) pkg:golang/binary_with_module_replacement",
		// golang.org/x/xerrors => github.com/golang/xerrors
		"github.com/golang/xerrors v0.0.0-20220907171357-04be3eba64a2 pkg:golang/github.com/golang/xerrors@v0.0.0-20220907171357-04be3eba64a2",
		"stdlib go1.22.0 pkg:golang/stdlib@1.22.0",
	}},
}

func view(pkgs []*report.Package, path string) []string {
	var out []string
	for _, p := range pkgs {
		if p.Filepath == path {
			out = append(out, p.Name+" "+p.Version+" "+p.PURL)
		}
	}
	return out
}

// TestFixtures puts the corpus's Go binaries in a layer with other files
// (a C executable of this machine, a script and a text file holding the
// build-information marker) and reads it through the layer reader: only the
// Go binaries are kept, whatever their mode (one is 0644), and their modules
// are reported.
func TestFixtures(t *testing.T) {
	files := []scannertest.LayerFile{
		{Path: "usr/bin/true", Mode: 0o755, Body: hostELF(t)},
		{Path: "usr/bin/script", Mode: 0o755, Body: []byte("#!/bin/sh\necho '\xff Go buildinf:'\n" + strings.Repeat("#", 100))},
		{Path: "usr/share/doc/notes.txt", Mode: 0o644, Body: []byte("\xff Go buildinf:" + strings.Repeat("#", 100))},
	}
	var wantKept []string
	for i, g := range goFixtures {
		mode := int64(0o755)
		if i == 2 {
			mode = 0o644 // trivy_test.elf, as a copy without an executable bit
		}
		files = append(files, scannertest.LayerFile{Path: g.path, Mode: mode, Body: scannertest.ReadFile(t, fixtures.Path(t, g.fixture))})
		wantKept = append(wantKept, g.path)
	}
	blob := scannertest.Tar(t, files...)
	for name, opts := range map[string]layer.Options{
		"in memory": {},
		"spooled":   {MaxInMemory: 1 << 10, TempDir: t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			res, kept := scannertest.ScanBlob(t, Scanner{}, blob, opts)
			if !slices.Equal(kept, wantKept) {
				t.Errorf("kept %q, want %q", kept, wantKept)
			}
			if len(res.Warnings) != 0 {
				t.Errorf("warnings %q", res.Warnings)
			}
			for _, g := range goFixtures {
				if got := view(res.Packages, g.path); !slices.Equal(got, g.want) {
					t.Errorf("%s:\n got  %q\n want %q", g.fixture, got, g.want)
				}
			}
			for _, p := range res.Packages {
				if p.Kind != report.KindBinary || p.PackageDB != p.Filepath {
					t.Errorf("package %+v", p)
				}
			}
		})
	}
}

// TestNoBuildIDNote builds a Go binary without the Go build ID note
// (-ldflags=-buildid=): its head does not tell it is Go, so the scanner asks
// for the build-information marker, and the layer reader keeps the file
// because it holds it.
func TestNoBuildIDNote(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/nobuildid\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"hi\") }\n"), 0o644)
	bin := filepath.Join(dir, "nobuildid")
	cmd := exec.Command(goTool, "build", "-ldflags=-buildid= -X main.version=2.3.4", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a test binary with the go command: %v\n%s", err, out)
	}
	body := scannertest.ReadFile(t, bin)
	keep, marker := Scanner{}.MatchHead("nobuildid", body[:min(len(body), scanner.HeadSize)])
	if keep || !bytes.Equal(marker, buildInfoMagic) {
		t.Fatalf("MatchHead = %v, %q; want the marker", keep, marker)
	}
	res, kept := scannertest.ScanBlob(t, Scanner{}, scannertest.Tar(t, scannertest.LayerFile{Path: "usr/bin/nobuildid", Mode: 0o755, Body: body}), layer.Options{})
	if !slices.Equal(kept, []string{"usr/bin/nobuildid"}) {
		t.Fatalf("kept %q", kept)
	}
	want := []string{
		"example.com/nobuildid 2.3.4 pkg:golang/example.com/nobuildid@2.3.4",
	}
	got := view(res.Packages, "usr/bin/nobuildid")
	if len(got) != 2 || got[0] != want[0] || !strings.HasPrefix(got[1], "stdlib go1.") {
		t.Errorf("got %q", got)
	}
}

func TestMatchHead(t *testing.T) {
	s := Scanner{}
	for _, g := range goFixtures {
		b := scannertest.ReadFile(t, fixtures.Path(t, g.fixture))
		if keep, _ := s.MatchHead(g.path, b[:scanner.HeadSize]); !keep {
			t.Errorf("%s: head not recognised as Go", g.fixture)
		}
	}
	c := hostELF(t)
	if keep, marker := s.MatchHead("true", c[:min(len(c), scanner.HeadSize)]); keep || !bytes.Equal(marker, buildInfoMagic) {
		t.Errorf("C executable: %v, %q", keep, marker)
	}
	// Synthetic heads: a static executable and a PIE are asked for the
	// marker, a shared library (ET_DYN without an interpreter) and a
	// relocatable object are refused; a Go note makes any of them kept.
	for _, tc := range []struct {
		name   string
		head   []byte
		keep   bool
		marker bool
	}{
		{"ET_EXEC", synthELF(etExec, false, false), false, true},
		{"ET_DYN with PT_INTERP", synthELF(etDyn, true, false), false, true},
		{"ET_DYN without PT_INTERP", synthELF(etDyn, false, false), false, false},
		{"ET_REL", synthELF(1, false, false), false, false},
		{"ET_EXEC with the Go note", synthELF(etExec, false, true), true, false},
		{"ET_DYN with the Go note", synthELF(etDyn, false, true), true, false},
	} {
		keep, marker := s.MatchHead(tc.name, tc.head)
		if keep != tc.keep || (marker != nil) != tc.marker {
			t.Errorf("%s: %v, %q", tc.name, keep, marker)
		}
	}
	pe := make([]byte, 256)
	copy(pe, "MZ")
	binary.LittleEndian.PutUint32(pe[60:], 128)
	copy(pe[128:], "PE\x00\x00")
	machO := append([]byte("\xcf\xfa\xed\xfe"), make([]byte, 100)...)
	for name, head := range map[string][]byte{"PE": pe, "Mach-O": machO} {
		if keep, marker := s.MatchHead(name, head); keep || !bytes.Equal(marker, buildInfoMagic) {
			t.Errorf("%s: %v, %q; want the marker", name, keep, marker)
		}
	}
	badPE := bytes.Clone(pe)
	binary.LittleEndian.PutUint32(badPE[60:], 0xfffffff0)
	for name, head := range map[string][]byte{
		"MZ without PE": badPE,
		"class file":    append([]byte("\xca\xfe\xba\xbe"), make([]byte, 100)...),
		"empty":         nil,
		"short":         []byte("\x7fELF\x02\x01"),
		"script":        []byte("#!/bin/sh\n" + strings.Repeat(" ", 100)),
		"bad class":     append([]byte("\x7fELF\x07\x01"), make([]byte, 100)...),
		"bad data":      append([]byte("\x7fELF\x02\x07"), make([]byte, 100)...),
	} {
		if keep, marker := s.MatchHead(name, head); keep || marker != nil {
			t.Errorf("%s: %v, %q", name, keep, marker)
		}
	}
}

// synthELF builds the head of a little-endian ELF64 file of type typ, with
// a PT_LOAD, a PT_INTERP when interp, and a PT_NOTE holding a GNU build-id
// note and, when goNote, the Go build ID note.
func synthELF(typ uint16, interp, goNote bool) []byte {
	le := binary.LittleEndian
	h := make([]byte, 4096)
	copy(h, "\x7fELF\x02\x01\x01")
	le.PutUint16(h[16:], typ)
	le.PutUint64(h[32:], 64) // e_phoff
	le.PutUint16(h[54:], 56) // e_phentsize
	phs := []uint32{1, 4}
	if interp {
		phs = append(phs, ptInterp)
	}
	le.PutUint16(h[56:], uint16(len(phs)))
	var notes []byte
	note := func(name string, typ uint32, desc string) {
		b := make([]byte, 12)
		le.PutUint32(b, uint32(len(name)))
		le.PutUint32(b[4:], uint32(len(desc)))
		le.PutUint32(b[8:], typ)
		b = append(b, name...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		b = append(b, desc...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		notes = append(notes, b...)
	}
	note("GNU\x00", 3, "0123456789abcdef0123")
	if goNote {
		note("Go\x00\x00", noteGoBuildID, "abc/def")
	}
	const noteOff = 1024
	copy(h[noteOff:], notes)
	for i, typ := range phs {
		ph := h[64+56*i:]
		le.PutUint32(ph, typ)
		if typ == ptNote {
			le.PutUint64(ph[8:], noteOff)
			le.PutUint64(ph[32:], uint64(len(notes)))
			le.PutUint64(ph[48:], 4)
		}
	}
	return h
}

// Bad input: a Go binary whose build information is damaged, truncated
// binaries, an ELF that is not Go, random bytes after an ELF magic. None is
// an error; the damaged Go binary is a warning, the others are skipped
// silently.
func TestBadInput(t *testing.T) {
	good := scannertest.ReadFile(t, fixtures.Path(t, "gobin/trivy_main-version-via-ldflags.elf"))
	i := bytes.Index(good, buildInfoMagic)
	if i < 0 {
		t.Fatal("no build-information marker in the fixture")
	}
	// A build line without "=": debug.ParseBuildInfo rejects it.
	damaged := bytes.ReplaceAll(good, []byte("build\t-buildmode=exe"), []byte("build\t-buildmodeXexe"))
	if bytes.Equal(damaged, good) {
		t.Fatal("no -buildmode build line in the fixture")
	}
	// An absurd length of the version string: not a Go executable for
	// debug/buildinfo.
	badLength := bytes.Clone(good)
	copy(badLength[i+32:], "\xff\xff\xff\x7f")
	noMarker := bytes.Clone(good)
	copy(noMarker[i:], "\x00 Go buildinf:")
	rnd := make([]byte, 1<<16)
	for k := range rnd {
		rnd[k] = byte(k * 7919 >> 3)
	}
	copy(rnd, good[:64])
	for _, tc := range []struct {
		name  string
		body  []byte
		warns bool
	}{
		{"damaged build information", damaged, true},
		{"marker removed", noMarker, false},
		{"version length absurd", badLength, false},
		{"truncated after the head", good[:scanner.HeadSize+100], false},
		{"truncated before the data", good[:i-1], false},
		{"not Go", hostELF(t), false},
		{"ELF header then noise", rnd, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("usr/bin/x", tc.body)})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != 0 {
				t.Errorf("packages %v", res.Packages)
			}
			if tc.warns != (len(res.Warnings) == 1) || (tc.warns && !strings.Contains(res.Warnings[0], "usr/bin/x")) {
				t.Errorf("warnings %q", res.Warnings)
			}
		})
	}
	// A file whose Open gives no io.ReaderAt is copied to a temporary
	// file, which is removed afterwards.
	tmp := t.TempDir()
	plain := scannertest.FileFunc("usr/bin/plain", int64(len(good)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewBuffer(good)), nil
	})
	res, err := Scanner{TempDir: tmp}.Scan(context.Background(), []scanner.File{plain})
	if err != nil || len(res.Packages) != 2 {
		t.Errorf("copied file: %v, %v", res, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	// A file that lies about its size is bounded by MaxFileSize: a
	// size over the limit is a warning without a read.
	huge := scannertest.FileFunc("usr/bin/huge", MaxFileSize+1, func() (io.ReadCloser, error) {
		t.Error("opened a file over the limit")
		return nil, os.ErrInvalid
	})
	res, err = Scanner{}.Scan(context.Background(), []scanner.File{huge})
	if err != nil || len(res.Warnings) != 1 {
		t.Errorf("huge: %v, %v", res, err)
	}
}

func TestLdflagsVersion(t *testing.T) {
	for flags, want := range map[string]string{
		"-w -X main.version=v1.0.0":                             "v1.0.0",
		"-s -w -X=main.Version=1.2.3":                           "1.2.3",
		"-X github.com/x/y/version.Version=2.0 -X main.ver=3.0": "3.0",
		"-X github.com/x/y/version.Version=2.0":                 "2.0",
		"-X main.version=dev":                                   "",
		"-X main.commit=abc -X main.date=2020":                  "",
		"-X 'main.version=v9'":                                  "v9",
		"-X":                                                    "",
		"":                                                      "",
	} {
		bi := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "-ldflags", Value: flags}}}
		if got := ldflagsVersion(bi); got != want {
			t.Errorf("ldflagsVersion(%q) = %q, want %q", flags, got, want)
		}
	}
}

// FuzzMatchHead feeds arbitrary heads to the ELF header parser, seeded with
// the heads of the corpus's Go binaries (aquasecurity/trivy,
// google/osv-scalibr test data). The same bytes are then scanned as a whole
// file: neither panics, and Scan never fails on content.
func FuzzMatchHead(f *testing.F) {
	for _, g := range goFixtures {
		b := scannertest.ReadFixture(f, g.fixture)
		f.Add(b[:4096])
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		keep, marker := Scanner{}.MatchHead("x", head)
		if keep && marker != nil {
			t.Fatal("both keep and a marker")
		}
		if _, err := (Scanner{}).Scan(context.Background(), []scanner.File{scannertest.File("x", head)}); err != nil {
			t.Fatalf("content error: %v", err)
		}
	})
}

// FuzzLdflagsVersion: whatever the -ldflags setting, the version found is
// empty or a valid value.
func FuzzLdflagsVersion(f *testing.F) {
	f.Add("-w -X main.version=v1.0.0")
	f.Add("-X=a.ver=1 -X b.Version=\"2\"")
	f.Fuzz(func(t *testing.T, flags string) {
		v := ldflagsVersion(&debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "-ldflags", Value: flags}}})
		if v != "" && !looksLikeVersion(v) {
			t.Fatalf("%q from %q", v, flags)
		}
	})
}
