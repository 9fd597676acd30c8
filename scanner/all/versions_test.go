package all_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"go/parser"
	"go/printer"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/all"
)

// The guard against the bug that started the scanner version rule (see
// CONTRIBUTING.md): a scanner learned something new without a version
// change, and reports made by its old code were served forever. The guard
// judges behaviour: testdata/outputs records, per scanner, a digest of its
// output for every case of the fixture corpus (corpus_test.go), and
// testdata/versions.txt its version and a hash of its code. A scanner whose
// outputs differ from the recorded ones while its version is the recorded
// one fails, naming the scanner and the first fixture that differs, even
// under -update-versions; a change of code with identical outputs (a
// refactor) passes without a version bump.

var updateVersions = flag.Bool("update-versions", false, "record testdata/versions.txt and testdata/outputs from the current scanners (refused for a scanner whose outputs changed and whose version did not)")

const module = "github.com/stevedore-dev/stevedore"

const how = "go test ./scanner/all -run Guard -update-versions"

// scannerRecord is what the guard knows of one scanner.
type scannerRecord struct {
	Version string
	// Hash hashes the scanner's code (codeHash).
	Hash string
	// Outputs are its outputs over the corpus.
	Outputs outputs
}

// guardState is the guard's record, or what it finds now.
type guardState struct {
	// Corpus maps each case of the corpus to the digest of its input.
	Corpus map[string]corpusRecord
	// Scanners are the enabled scanners, by name.
	Scanners map[string]scannerRecord
}

// corpusRecord is one case of the corpus in the record.
type corpusRecord struct {
	Input string // sha256 of the case's layer
	Where string // where the fixture is in the layer, or "layer"
	Note  string // the layer reader's refusal, if it refused the layer
}

func TestScannerVersionsGuard(t *testing.T) {
	root := moduleRoot(t)
	cur := currentState(t, root, loadCorpus(t, root), all.Default())
	rec, err := readState("testdata")
	if err != nil && !*updateVersions {
		t.Fatalf("%v: record it with: %s", err, how)
	}
	problems, notes := check(rec, cur, *updateVersions)
	for _, n := range notes {
		t.Log(n)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if *updateVersions && len(problems) == 0 {
		if err := writeState("testdata", cur); err != nil {
			t.Fatal(err)
		}
	}
}

// currentState hashes the code of the scanners ss and runs them over the
// corpus.
func currentState(t testing.TB, root string, cases []corpusCase, ss []scanner.Scanner) guardState {
	t.Helper()
	outs, refused := runCorpus(t, cases, ss)
	st := guardState{Corpus: corpusRecords(cases, refused), Scanners: map[string]scannerRecord{}}
	for _, s := range ss {
		in := s.Info()
		h, err := codeHash(root, pkgDir(s))
		if err != nil {
			t.Fatal(err)
		}
		st.Scanners[in.Name] = scannerRecord{Version: in.Version, Hash: h, Outputs: outs[in.Name]}
	}
	return st
}

// corpusRecords describes the corpus; refused are the cases whose layer the
// layer reader refused, with its error.
func corpusRecords(cases []corpusCase, refused map[string]string) map[string]corpusRecord {
	m := make(map[string]corpusRecord, len(cases))
	for _, c := range cases {
		m[c.Name] = corpusRecord{Input: c.inputDigest(), Where: c.Where, Note: refused[c.Name]}
	}
	return m
}

// check compares the recorded state with the current one. problems make
// the guard fail; notes are for the log. With update (-update-versions),
// what is new or bumped is to be recorded, but a scanner whose outputs
// changed while its version did not is still a problem: recording it would
// reintroduce the bug.
func check(rec, cur guardState, update bool) (problems, notes []string) {
	// The cases whose input is the same in both: a scanner's outputs are
	// compared over these only.
	var common []string
	var added, removed, changed []string
	for _, name := range slices.Sorted(maps.Keys(cur.Corpus)) {
		r, ok := rec.Corpus[name]
		switch {
		case !ok:
			added = append(added, name)
		case r.Input != cur.Corpus[name].Input:
			changed = append(changed, name)
		default:
			common = append(common, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rec.Corpus)) {
		if _, ok := cur.Corpus[name]; !ok {
			removed = append(removed, name)
		}
	}
	if len(added)+len(removed)+len(changed) > 0 {
		msg := fmt.Sprintf("the fixture corpus changed (%s)", corpusChange(added, removed, changed))
		if update {
			notes = append(notes, msg+": recorded")
		} else {
			problems = append(problems, msg+": record the scanners' outputs over it (no version bump is needed for a change of the corpus alone): "+how)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cur.Scanners)) {
		c := cur.Scanners[name]
		r, ok := rec.Scanners[name]
		var p, n string
		if ok {
			p, n = judge(name, &r, c, common, update)
		} else {
			p, n = judge(name, nil, c, common, update)
		}
		if p != "" {
			problems = append(problems, p)
		}
		if n != "" {
			notes = append(notes, n)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rec.Scanners)) {
		if _, ok := cur.Scanners[name]; !ok {
			msg := fmt.Sprintf("scanner %s is recorded but no longer enabled", name)
			if update {
				notes = append(notes, msg+": its record is removed")
			} else {
				problems = append(problems, msg+": "+how)
			}
		}
	}
	return problems, notes
}

func corpusChange(added, removed, changed []string) string {
	var parts []string
	for _, l := range []struct {
		what  string
		cases []string
	}{{"added", added}, {"removed", removed}, {"with another input", changed}} {
		if len(l.cases) > 0 {
			parts = append(parts, fmt.Sprintf("%d %s, first %s", len(l.cases), l.what, l.cases[0]))
		}
	}
	return strings.Join(parts, "; ")
}

// judge decides about one scanner: rec is its record (nil: none), cur what
// it is now, common the cases of the corpus to compare its outputs over.
func judge(name string, rec *scannerRecord, cur scannerRecord, common []string, update bool) (problem, note string) {
	switch {
	case rec == nil && update:
		return "", fmt.Sprintf("scanner %s (version %s) recorded", name, cur.Version)
	case rec == nil:
		return fmt.Sprintf("scanner %s (version %s) is not recorded: record it: %s", name, cur.Version, how), ""
	case rec.Version != cur.Version && update:
		return "", fmt.Sprintf("scanner %s is now version %s (was %s): its code and outputs recorded", name, cur.Version, rec.Version)
	case rec.Version != cur.Version:
		return fmt.Sprintf("scanner %s is now version %s (recorded: %s): record its code and outputs: %s", name, cur.Version, rec.Version, how), ""
	}
	for _, c := range common {
		was, now := rec.Outputs.get(c), cur.Outputs.get(c)
		if was.Digest == now.Digest {
			continue
		}
		why := "its code changed"
		if rec.Hash == cur.Hash {
			why = "its code did not change: a package it depends on, the layer reader or a module did"
		}
		return fmt.Sprintf("scanner %s: its output for fixture %s changed (recorded: %s; now: %s; %s) but its version is still %s: "+
			"bump its Version (and its MatchVersion if what it matches changed) so that reports made by the old code are indexed again, then record it: %s",
			name, c, was.describe(), now.describe(), why, cur.Version, how), ""
	}
	if rec.Hash != cur.Hash {
		if update {
			return "", fmt.Sprintf("scanner %s: code changed, outputs identical over %d fixtures: its new code hash recorded, version %s kept", name, len(common), cur.Version)
		}
		return "", fmt.Sprintf("scanner %s: its code changed (hash %s, recorded %s) and its outputs over %d fixtures are identical: no version bump is needed; record the new code hash with: %s",
			name, cur.Hash, rec.Hash, len(common), how)
	}
	return "", ""
}

// get returns the output for case c; a case not in o had an empty output.
func (o outputs) get(c string) output {
	if out, ok := o[c]; ok {
		return out
	}
	return output{Digest: emptyDigest, Summary: "nothing"}
}

func (o output) describe() string {
	return fmt.Sprintf("%s (sha256 %.12s)", o.Summary, o.Digest)
}

// pkgDir is the scanner's package directory, relative to the module root.
func pkgDir(s scanner.Scanner) string {
	t := reflect.TypeOf(s)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.TrimPrefix(strings.TrimPrefix(t.PkgPath(), module), "/")
}

// codeHash hashes the code (comments stripped, formatting normalised) of the
// non-test Go files of dir and of the module packages under scanner/
// that it imports, recursively.
func codeHash(root, dir string) (string, error) {
	h := sha256.New()
	seen := map[string]bool{}
	var walk func(dir string) error
	walk = func(dir string) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			return err
		}
		slices.Sort(files)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			af.Comments = nil
			var buf bytes.Buffer
			if err := printer.Fprint(&buf, fset, af); err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(filepath.Join(dir, filepath.Base(f))), buf.Len())
			h.Write(buf.Bytes())
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if sub, ok := strings.CutPrefix(p, module+"/scanner/"); ok {
					if err := walk("scanner/" + sub); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := walk(dir); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
