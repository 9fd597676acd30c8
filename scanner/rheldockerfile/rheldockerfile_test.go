package rheldockerfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// TestLayers reads quay/claircore's RHEL test layers (rhel/testdata,
// Apache-2.0; testdata/fixtures/SOURCES.md). layer-with-cpe.tar holds
// root/buildinfo/Dockerfile-name-1-1:
//
//	from testimage:1
//
//	ENV PREFIX=rh
//	LABEL com.redhat.component="${PREFIX}-pkg"
//	LABEL architecture=x86_64
//
// (no newline at the end), so the component is "rh-pkg". The other layers
// have content manifests and no Dockerfile.
func TestLayers(t *testing.T) {
	scannertest.CheckRepositoryLayers(t, Scanner{}, rhel.ContainerNameKey, []scannertest.RepositoryLayer{
		{Layer: "claircore_layer-with-cpe.tar", Files: []string{"root/buildinfo/Dockerfile-name-1-1"}, Want: []string{"rh-pkg"}},
		{Layer: "claircore_layer-with-embedded-cs.tar", Files: []string{}},
		{Layer: "claircore_layer-with-no-cpe-info.tar", Files: []string{}},
	})
}

func TestInfoMatch(t *testing.T) {
	want := scanner.Info{Name: "rhel-dockerfile", Version: "1", Kind: scanner.KindRepository, MatchVersion: "1"}
	if in := (Scanner{}).Info(); in != want {
		t.Errorf("Info() = %+v, want %+v", in, want)
	}
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"root/buildinfo/Dockerfile-ubi8-container-8.2-299", true},
		{"root/buildinfo/Dockerfile-name-1-1", true},
		{"root/buildinfo/Dockerfile-", false},
		{"root/buildinfo/Dockerfile", false},
		{"root/buildinfo/dockerfile-x-1-1", false},
		{"root/buildinfo/content_manifests/Dockerfile-x-1-1", false},
		{"root/buildinfo/content_manifests/x.json", false},
		{"x/root/buildinfo/Dockerfile-x-1-1", false},
		{"usr/share/buildinfo/Dockerfile-x-1-1", false},
	} {
		if got := (Scanner{}).Match(tt.path); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestLabels(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]Label
	}{
		{"both forms", "FROM x\nLABEL a=1 b=\"v 2\" 'c d'=3\nLABEL legacy some \"quoted value\"\n",
			map[string]Label{"a": {Value: "1"}, "b": {Value: "v 2"}, "c d": {Value: "3"}, "legacy": {Value: "some quoted value"}}},
		{"quoted key", "FROM x\nLABEL \"com.redhat.component\"=\"ubi8-container\" \"name\"=\"ubi8\"\n",
			map[string]Label{ComponentLabel: {Value: "ubi8-container"}, "name": {Value: "ubi8"}}},
		{"env forms", "FROM x\nENV A=a\nENV B b\nENV C=\"$A\" D=${B}\nLABEL a=$A b=${B} c=$C d=$D\n",
			map[string]Label{"a": {Value: "a"}, "b": {Value: "b"}, "c": {Value: "a"}, "d": {Value: "b"}}},
		{"legacy env takes the rest of the line", "FROM x\nENV B b c\nLABEL b=\"$B\"\n",
			map[string]Label{"b": {Value: "b c"}}},
		{"one ENV sees the variables from before it", "FROM x\nENV A=1\nENV A=2 B=$A\nLABEL a=$A b=$B\n",
			map[string]Label{"a": {Value: "2"}, "b": {Value: "1"}}},
		{"one LABEL sees the variables from before it", "FROM x\nENV V=1\nLABEL v=$V\nENV V=2\nLABEL w=$V\n",
			map[string]Label{"v": {Value: "1"}, "w": {Value: "2"}}},
		{"defaults", "FROM x\nENV E=\"\"\nLABEL a=${U:-d1} b=${E:-d2} c=${E-d3} d=${U-d4} e=${U:+x} f=\"${U}\"\n",
			map[string]Label{"a": {Value: "d1"}, "b": {Value: "d2"}, "c": {Value: ""}, "d": {Value: "d4"}, "e": {Value: ""}, "f": {Value: ""}}},
		{"quoting", "FROM x\nENV V=v\nLABEL a='$V' b=\"$V\" c=\\$V d=\"a\\\"b\" e=pre'$V'\"$V\"\n",
			map[string]Label{"a": {Value: "$V"}, "b": {Value: "v"}, "c": {Value: "$V"}, "d": {Value: `a"b`}, "e": {Value: "pre$Vv"}}},
		{"continuations and comments", "FROM x\nLABEL a=1 \\\n# a comment inside\n      b=2 \\\n\n      c=3\n",
			map[string]Label{"a": {Value: "1"}, "b": {Value: "2"}, "c": {Value: "3"}}},
		{"escape directive", "# escape=`\nFROM x\nENV P=c:\\path\nLABEL a=$P `\n  b=2\n",
			map[string]Label{"a": {Value: `c:\path`}, "b": {Value: "2"}}},
		{"arg defaults", "FROM x\nARG A=1 B=$A\nARG C=\"c d\"\nLABEL a=$A b=$B c=\"$C\"\n",
			map[string]Label{"a": {Value: "1"}, "b": {Value: "1"}, "c": {Value: "c d"}}},
		{"env overrides arg", "FROM x\nENV V=env\nARG V=arg\nARG W=arg\nENV W=env\nLABEL v=$V w=$W\n",
			map[string]Label{"v": {Value: "env"}, "w": {Value: "env"}}},
		{"global args", "ARG G=g\nARG BASE=x\nFROM $BASE\nLABEL a=${G:-unseen}\nARG G\nLABEL b=$G\n",
			map[string]Label{"a": {Value: "unseen"}, "b": {Value: "g"}}},
		{"arg without a value", "FROM x\nARG V\nLABEL a=foo-$V b=${V:-d} c=x\n",
			map[string]Label{"a": {Value: "foo-", Unresolved: []string{"V"}}, "b": {Value: "d", Unresolved: []string{"V"}}, "c": {Value: "x"}}},
		{"global arg without a value", "ARG V\nFROM x\nARG V\nENV E=$V\nLABEL a=$E b=x\n",
			map[string]Label{"a": {Value: "", Unresolved: []string{"V"}}, "b": {Value: "x"}}},
		{"an undeclared variable is empty", "FROM x\nLABEL a=foo-$NOPE\n",
			map[string]Label{"a": {Value: "foo-"}}},
		{"later labels win", "FROM x\nLABEL a=1\nLABEL a=2\n",
			map[string]Label{"a": {Value: "2"}}},
		{"the last stage counts", "FROM golang AS builder\nENV V=1\nLABEL a=1\nFROM ubi8\nLABEL b=$V\n",
			map[string]Label{"b": {Value: ""}}},
		{"a stage from a stage keeps its env and labels", "FROM ubi8 AS Base\nENV V=1\nARG W=2\nLABEL a=1\nFROM base\nLABEL b=$V c=$W\n",
			map[string]Label{"a": {Value: "1"}, "b": {Value: "1"}, "c": {Value: ""}}},
		{"onbuild is ignored", "FROM x\nONBUILD LABEL a=1\n",
			map[string]Label{}},
		{"lower case instructions, BOM, CRLF", "\ufefffrom x\r\nenv P=rh\r\nlabel com.redhat.component=\"${P}-pkg\"",
			map[string]Label{ComponentLabel: {Value: "rh-pkg"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Labels([]byte(tt.in))
			if err != nil {
				t.Fatalf("Labels(%q): %v", tt.in, err)
			}
			if !equalLabels(got, tt.want) {
				t.Errorf("Labels(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

// Unresolved names the first MaxUnresolved build arguments, sorted.
func TestUnresolvedLimit(t *testing.T) {
	var df strings.Builder
	df.WriteString("FROM x\n")
	var refs []string
	for i := range 20 {
		fmt.Fprintf(&df, "ARG A%02d\n", 19-i)
		refs = append(refs, fmt.Sprintf("$A%02d", i))
	}
	fmt.Fprintf(&df, "ENV X=%s\nLABEL x=$X\n", strings.Join(refs, ""))
	got, err := Labels([]byte(df.String()))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A00", "A01", "A02", "A03", "A04", "A05", "A06", "A07"}
	if l := got["x"]; l.Value != "" || !slices.Equal(l.Unresolved, want) {
		t.Errorf("label x %+v, want unresolved %q", l, want)
	}
}

func equalLabels(a, b map[string]Label) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || x.Value != y.Value || !slices.Equal(x.Unresolved, y.Unresolved) {
			return false
		}
	}
	return true
}

func TestLabelsErrors(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{"empty", "", "no instructions"},
		{"comments only", "# nothing\n", "no instructions"},
		{"no FROM", "ARG A=1\n", "no FROM"},
		{"not UTF-8", "FROM x\nLABEL a=\xff\n", "UTF-8"},
		{"a NUL byte", "FROM x\nLABEL a=\x00\n", "a NUL byte at offset 15"},
		{"label before FROM", "LABEL a=1\nFROM x\n", "line 1: LABEL: before the first FROM"},
		{"env before FROM", "ENV a=1\nFROM x\n", "line 1: ENV: before the first FROM"},
		{"legacy label without value", "FROM x\nLABEL a\n", "line 2"},
		{"missing =", "FROM x\nLABEL a=1 b\n", "line 2"},
		{"unterminated substitution", "FROM x\n\nLABEL a=${V\n", "line 3: LABEL: expanding"},
		{"bad substitution", "FROM x\nLABEL a=${:x}\n", "bad substitution"},
		{"required variable", "FROM x\nLABEL a=${V:?must-be-set}\n", "V: must-be-set"},
		{"empty name once expanded", "FROM x\nLABEL $NOPE=1\n", "empty once expanded"},
		{"empty arg name", "FROM x\nARG =1\n", "empty name"},
		{"from without image", "FROM\n", "no image"},
		{"bad escape directive", "# escape=x\nFROM x\n", "not a Dockerfile"},
		{"a line over the parser's limit", "FROM x\nLABEL a=" + strings.Repeat("v", 70<<10) + "\n", "not a Dockerfile"},
		{"duplicate stage name", "FROM x AS a\nFROM y AS A\n", `duplicate stage name "A"`},
		{"replace-all substitution", "FROM x\nENV V=abc\nLABEL a=${V//b/c}\n", "pattern substitutions"},
		{"prefix substitution", "FROM x\nENV V=abc\nLABEL a=${V#a}\n", "pattern substitutions"},
		{"suffix substitution", "FROM x\nENV V=abc\nLABEL a=\"${V%%c}\"\n", "pattern substitutions"},
		// Hostile input: bounded time and memory.
		{"too many stages", strings.Repeat("FROM x\n", MaxStages+1), "more than 64 build stages"},
		{"a variable doubling at each ENV", "FROM x\nENV A=aaaaaaaa\n" + strings.Repeat("ENV A=$A$A\n", 40), "could exceed the limit of 8388608 bytes"},
		{"substitutions nested too deep", "FROM x\nLABEL a=" + strings.Repeat("${A:-", MaxSubstitutions+1) + strings.Repeat("}", MaxSubstitutions+1) + "\n", "more than 256 substitutions"},
		{"many references to a large variable", "FROM x\nENV A=" + strings.Repeat("a", 60<<10) + "\n" + strings.Repeat("LABEL a=$A\n", 200), "could exceed the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Labels([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Labels(%.40q) = %v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
		})
	}
}

func TestComponent(t *testing.T) {
	tests := []struct {
		name, in, want, err string
	}{
		{"plain", "FROM x\nLABEL com.redhat.component=ubi8-container\n", "ubi8-container", ""},
		{"spaces trimmed", "FROM x\nLABEL com.redhat.component=\" ubi8-container \"\n", "ubi8-container", ""},
		{"default", "FROM x\nLABEL com.redhat.component=${NAME:-ubi9-minimal-container}\n", "ubi9-minimal-container", ""},
		{"no label", "FROM x\nLABEL name=ubi8\n", "", "no com.redhat.component label"},
		{"empty", "FROM x\nLABEL com.redhat.component=\"\"\n", "", "is empty"},
		{"from an unknown arg", "FROM x\nARG PREFIX\nLABEL com.redhat.component=${PREFIX}-container\n", "", "build arguments without a value in the Dockerfile: PREFIX"},
		{"control character", "FROM x\nENV A=\"a\tb\"\nLABEL com.redhat.component=$A\n", "", "control character (U+0009)"},
		{"not a Dockerfile", "FROM x\nLABEL com.redhat.component\n", "", "not a Dockerfile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Component([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("Component(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Component(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestScan(t *testing.T) {
	const dir = "root/buildinfo/"
	df := func(name, component string) scanner.File {
		return scannertest.File(dir+name, []byte("FROM x\nLABEL com.redhat.component="+component+"\n"))
	}
	scannertest.CheckRepositoryScans(t, Scanner{}, []scannertest.RepositoryScan{
		{Name: "none"},
		{Name: "distinct components, sorted", Files: []scanner.File{df("Dockerfile-b-1-1", "ubi9-container"), df("Dockerfile-a-1-1", "ubi8-container"), df("Dockerfile-c-1-1", "ubi8-container")},
			Want: []string{"ubi8-container", "ubi9-container"}},
		{Name: "a file without the label is a warning", Files: []scanner.File{
			scannertest.File(dir+"Dockerfile-nolabel-1-1", []byte("FROM x\nLABEL name=x\n")),
			df("Dockerfile-ok-1-1", "ubi8-container"),
		}, Want: []string{"ubi8-container"}, Warns: []string{"Dockerfile-nolabel-1-1: no com.redhat.component label"}},
		{Name: "unreadable files are warnings", Files: []scanner.File{
			scannertest.File(dir+"Dockerfile-bin-1-1", []byte("\x7fELF\x00\xff")),
			scannertest.FileFunc(dir+"Dockerfile-big-1-1", MaxFileSize+1, nil),
			scannertest.FileFunc(dir+"Dockerfile-lies-1-1", 10, func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(bytes.Repeat([]byte("#"), MaxFileSize+1))), nil
			}),
			scannertest.FileFunc(dir+"Dockerfile-gone-1-1", 10, func() (io.ReadCloser, error) { return nil, errors.New("gone") }),
		}, Warns: []string{
			"Dockerfile-big-1-1: size 1048577 bytes exceeds the limit",
			"Dockerfile-bin-1-1: not valid UTF-8",
			"Dockerfile-gone-1-1: opening: gone",
			"Dockerfile-lies-1-1: more than 1048576 bytes",
		}},
		{Name: "a long reason is cut", Files: []scanner.File{
			scannertest.File(dir+"Dockerfile-long-1-1", []byte("FROM x\nLABEL a=\"${"+strings.Repeat("é \\\n", 40<<10)+"\"\n")),
		}, Warns: []string{"Dockerfile-long-1-1: line 2: LABEL: expanding"}},
	}, func(t *testing.T, r *report.Repository) string {
		if r.Key != rhel.ContainerNameKey {
			t.Errorf("repository %+v", r)
		}
		return r.Name
	}, func(t *testing.T, w string) {
		if len(w) > 700 || !utf8.ValidString(w) {
			t.Errorf("warning of %d bytes (valid UTF-8: %v)", len(w), utf8.ValidString(w))
		}
		if !strings.HasPrefix(w, "rhel-dockerfile: skipping "+dir) {
			t.Errorf("warning %q does not start with the scanner's name and the file's path", w)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Scanner{}).Scan(ctx, []scanner.File{df("Dockerfile-a-1-1", "a")}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
