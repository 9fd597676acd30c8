package summary_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/cli/summary"
	"github.com/stevedore-dev/stevedore/report"
)

func TestWrite(t *testing.T) {
	next := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	r := report.NewReport("sha256:"+report.Digest(strings.Repeat("a", 64)), report.StateIndexPartial)
	r.Attempt, r.NextRetry = 3, &next
	r.Partial = []report.PartialReason{{Scanner: "rhel-repository-cpe", Reason: "the mapping is not loaded"}}
	r.Distributions["1"] = &report.Distribution{ID: "1", DID: "rhel", VersionID: "9", PrettyName: "Red Hat Enterprise Linux 9"}
	r.Packages["2"] = &report.Package{ID: "2", Name: "bash", Version: "5.1", Arch: "x86_64", PURL: "pkg:rpm/redhat/bash@5.1", Source: &report.Package{Name: "bash", Version: "5.1"}}
	r.Packages["3"] = &report.Package{ID: "3", Name: "libgcc", Version: "11", Arch: "x86_64", PURL: "pkg:rpm/redhat/libgcc@11", Source: &report.Package{Name: "gcc", Version: "11"}}
	r.Environments["2"] = []*report.Environment{{PackageDB: "var/lib/rpm/rpmdb.sqlite"}}
	r.Environments["3"] = []*report.Environment{{PackageDB: "var/lib/rpm/rpmdb.sqlite"}}
	var b strings.Builder
	if err := summary.Write(&b, "registry/app:1", r, 1); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"State:         IndexPartial",
		"Missing:       rhel-repository-cpe: the mapping is not loaded",
		"Attempt:       3, next retry 2026-11-22T16:00:00Z",
		"Red Hat Enterprise Linux 9  [rhel 9]",
		"Packages:      2: rpm 2 (from 2 source packages)",
		"bash  5.1      rpm   var/lib/rpm/rpmdb.sqlite",
		"... and 1 more",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// An image of several ecosystems: one count line, most first, and the
// package table grouped in the same order, one row per package.
func TestWriteGroupsByEcosystem(t *testing.T) {
	r := report.NewReport("sha256:"+report.Digest(strings.Repeat("b", 64)), report.StateIndexFinished)
	add := func(id, name, version, purl string, dbs ...string) {
		r.Packages[id] = &report.Package{ID: id, Name: name, Version: version, PURL: purl}
		for _, db := range dbs {
			r.Environments[id] = append(r.Environments[id], &report.Environment{PackageDB: db})
		}
	}
	for i := range 3 {
		add(fmt.Sprint("d", i), fmt.Sprint("deb", i), "1.0", "pkg:deb/debian/deb"+fmt.Sprint(i)+"@1.0", "var/lib/dpkg/status")
	}
	add("n1", "express", "4.16.4", "pkg:npm/express@4.16.4", "app/node_modules/express/package.json")
	add("n2", "ms", "2.1.1", "pkg:npm/ms@2.1.1", "app/node_modules/ms/package.json", "app/node_modules/x/node_modules/ms/package.json")
	add("g1", "golang.org/x/net", "v0.1.0", "pkg:golang/golang.org/x/net@v0.1.0", "usr/bin/app")
	add("o1", "weird\tname\x1b[31m", "1", "", "somewhere")
	var b strings.Builder
	if err := summary.Write(&b, "registry/app:2", r, 0); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if want := "Packages:      7: deb 3, npm 2, go 1, other 1"; !strings.Contains(out, want) {
		t.Errorf("summary lacks %q:\n%s", want, out)
	}
	var table []string
	for i, l := range lines {
		if strings.HasPrefix(l, "NAME") {
			table = lines[i+1:]
		}
	}
	wantTypes := []string{"deb", "deb", "deb", "npm", "npm", "go", "other"}
	if len(table) != len(wantTypes) {
		t.Fatalf("table has %d rows, want %d:\n%s", len(table), len(wantTypes), out)
	}
	for i, row := range table {
		if f := strings.Fields(row); len(f) < 3 || !contains(f, wantTypes[i]) {
			t.Errorf("row %d %q: want type %s", i, row, wantTypes[i])
		}
	}
	for _, want := range []string{
		"app/node_modules/ms/package.json (+1 more)",
		"golang.org/x/net  v0.1.0   go",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") || strings.Contains(out, "\t") {
		t.Errorf("control characters from the image reached the table:\n%q", out)
	}
}

func contains(fields []string, s string) bool {
	for _, f := range fields {
		if f == s {
			return true
		}
	}
	return false
}

func TestType(t *testing.T) {
	for _, tc := range []struct{ purl, want string }{
		{"pkg:deb/debian/libc6@2.36-9?arch=amd64", "deb"},
		{"pkg:golang/golang.org/x/net@v0.1.0", "go"},
		{"pkg:npm/%40babel/parser@7.23.6", "npm"},
		{"pkg:MAVEN/g/a@1", "maven"},
		{"", "other"},
		{"pkg:", "other"},
		{"pkg:npm@1", "other"},
		{"not a purl", "other"},
	} {
		if got := summary.Type(&report.Package{PURL: tc.purl}); got != tc.want {
			t.Errorf("Type(%q) = %q, want %q", tc.purl, got, tc.want)
		}
	}
}

// Whatever an image's package fields hold, the summary is written, and no
// control character of theirs reaches the terminal.
func FuzzWrite(f *testing.F) {
	f.Add("libc6", "2.36-9", "pkg:deb/debian/libc6@2.36-9", "var/lib/dpkg/status", "Debian 12")
	f.Add("x\x1b[2J", "1\n2", "pkg:\t/", "a\rb", "\x00")
	f.Fuzz(func(t *testing.T, name, version, purl, db, dist string) {
		r := report.NewReport("sha256:"+report.Digest(strings.Repeat("c", 64)), report.StateIndexFinished)
		r.Distributions["1"] = &report.Distribution{ID: "1", PrettyName: dist}
		r.Packages["1"] = &report.Package{ID: "1", Name: name, Version: version, PURL: purl}
		r.Environments["1"] = []*report.Environment{{PackageDB: db}}
		var b strings.Builder
		if err := summary.Write(&b, "title", r, 0); err != nil {
			t.Fatal(err)
		}
		for _, c := range b.String() {
			if c != '\n' && (c < 0x20 || c == 0x7f) {
				t.Fatalf("control character %q in the summary:\n%q", c, b.String())
			}
		}
		if typ := summary.Type(r.Packages["1"]); typ == "" || strings.ContainsAny(typ, "/?@# \t\n") {
			t.Fatalf("Type(%q) = %q", purl, typ)
		}
	})
}
