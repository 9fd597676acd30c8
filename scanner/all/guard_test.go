package all_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/all"
	"github.com/stevedore-dev/stevedore/scanner/dpkg"
)

// TestGuardCheck tests the guard's decision on made-up records.
func TestGuardCheck(t *testing.T) {
	tests := guardCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems, notes := check(tt.rec, tt.cur, tt.update)
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems %q, want %d containing %q", problems, len(tt.problems), tt.problems)
			}
			for i, want := range tt.problems {
				if !strings.Contains(problems[i], want) {
					t.Errorf("problem %d is %q, want it to contain %q", i, problems[i], want)
				}
			}
			for _, want := range tt.noteParts {
				if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, want) }) {
					t.Errorf("notes %q, want one containing %q", notes, want)
				}
			}
			if len(tt.noteParts) == 0 && len(notes) > 0 {
				t.Errorf("notes %q, want none", notes)
			}
		})
	}
}

// mkCorpus is a corpus record of the cases named.
func mkCorpus(cases ...string) map[string]corpusRecord {
	m := map[string]corpusRecord{}
	for _, c := range cases {
		m[c] = corpusRecord{Input: "in-" + c, Where: "etc/" + c}
	}
	return m
}

// mkOutputs is a scanner's outputs: case, digest, case, digest...
func mkOutputs(kv ...string) outputs {
	o := outputs{}
	for i := 0; i < len(kv); i += 2 {
		o[kv[i]] = output{Digest: kv[i+1], Summary: "found " + kv[i+1]}
	}
	return o
}

// mkState is a guard state of corpus c and scanner records ss.
func mkState(c map[string]corpusRecord, ss map[string]scannerRecord) guardState {
	return guardState{Corpus: c, Scanners: ss}
}

// guardABC and guardBase are the corpus and the scanner record most cases
// of TestGuardCheck start from.
var (
	guardABC  = mkCorpus("a", "b", "c")
	guardBase = map[string]scannerRecord{"s": {Version: "1", Hash: "h1", Outputs: mkOutputs("a", "d1", "b", "d2")}}
)

// guardCase is a case of TestGuardCheck: the recorded and the current
// state, whether -update-versions is given, and what the guard must say.
type guardCase struct {
	name      string
	rec, cur  guardState
	update    bool
	problems  []string // each problem must contain its string, in order
	noteParts []string // some note must contain each
}

// guardCases are the cases of TestGuardCheck.
var guardCases = []guardCase{
	{
		name: "unchanged",
		rec:  mkState(guardABC, guardBase),
		cur:  mkState(guardABC, guardBase),
	},
	{
		name:      "a refactor: the code changed, the outputs did not",
		rec:       mkState(guardABC, guardBase),
		cur:       mkState(guardABC, map[string]scannerRecord{"s": {Version: "1", Hash: "h2", Outputs: mkOutputs("a", "d1", "b", "d2")}}),
		noteParts: []string{"scanner s: its code changed", "no version bump is needed", "-update-versions"},
	},
	{
		name:      "a refactor, recorded",
		rec:       mkState(guardABC, guardBase),
		cur:       mkState(guardABC, map[string]scannerRecord{"s": {Version: "1", Hash: "h2", Outputs: mkOutputs("a", "d1", "b", "d2")}}),
		update:    true,
		noteParts: []string{"scanner s: code changed, outputs identical over 3 fixtures: its new code hash recorded"},
	},
	{
		name:     "the code and an output changed, the version did not",
		rec:      mkState(guardABC, guardBase),
		cur:      mkState(guardABC, map[string]scannerRecord{"s": {Version: "1", Hash: "h2", Outputs: mkOutputs("a", "d1", "b", "d2x", "c", "d3")}}),
		problems: []string{"scanner s: its output for fixture b changed (recorded: found d2 (sha256 d2); now: found d2x (sha256 d2x); its code changed) but its version is still 1: bump its Version"},
	},
	{
		name:     "-update-versions does not record a changed output without a bump",
		rec:      mkState(guardABC, guardBase),
		cur:      mkState(guardABC, map[string]scannerRecord{"s": {Version: "1", Hash: "h2", Outputs: mkOutputs("a", "d1", "b", "d2x")}}),
		update:   true,
		problems: []string{"scanner s: its output for fixture b changed"},
	},
	{
		name:     "one more find where there was nothing",
		rec:      mkState(guardABC, guardBase),
		cur:      mkState(guardABC, map[string]scannerRecord{"s": {Version: "1", Hash: "h2", Outputs: mkOutputs("a", "d1", "b", "d2", "c", "d3")}}),
		problems: []string{"scanner s: its output for fixture c changed (recorded: nothing (sha256 " + emptyDigest[:12] + "); now: found d3"},
	},
	{
		name:     "an output lost",
		rec:      mkState(guardABC, guardBase),
		cur:      mkState(guardABC, map[string]scannerRecord{"s": {Version: "1", Hash: "h2", Outputs: mkOutputs("b", "d2")}}),
		problems: []string{"scanner s: its output for fixture a changed (recorded: found d1 (sha256 d1); now: nothing"},
	},
	{
		name:     "an output changed though the code did not (a dependency did)",
		rec:      mkState(guardABC, guardBase),
		cur:      mkState(guardABC, map[string]scannerRecord{"s": {Version: "1", Hash: "h1", Outputs: mkOutputs("a", "d1x", "b", "d2")}}),
		problems: []string{"scanner s: its output for fixture a changed (recorded: found d1 (sha256 d1); now: found d1x (sha256 d1x); its code did not change"},
	},
	{
		name:     "bumped, not recorded",
		rec:      mkState(guardABC, guardBase),
		cur:      mkState(guardABC, map[string]scannerRecord{"s": {Version: "2", Hash: "h2", Outputs: mkOutputs("a", "d1x")}}),
		problems: []string{"scanner s is now version 2 (recorded: 1): record its code and outputs: go test ./scanner/all -run Guard -update-versions"},
	},
	{
		name:      "bumped, recorded",
		rec:       mkState(guardABC, guardBase),
		cur:       mkState(guardABC, map[string]scannerRecord{"s": {Version: "2", Hash: "h2", Outputs: mkOutputs("a", "d1x")}}),
		update:    true,
		noteParts: []string{"scanner s is now version 2 (was 1)"},
	},
	{
		name: "a new scanner",
		rec:  mkState(guardABC, guardBase),
		cur: mkState(guardABC, map[string]scannerRecord{"s": guardBase["s"],
			"t": {Version: "1", Hash: "h", Outputs: mkOutputs("c", "x")}}),
		problems: []string{"scanner t (version 1) is not recorded"},
	},
	{
		name: "a new scanner, recorded",
		rec:  mkState(guardABC, guardBase),
		cur: mkState(guardABC, map[string]scannerRecord{"s": guardBase["s"],
			"t": {Version: "1", Hash: "h", Outputs: mkOutputs("c", "x")}}),
		update:    true,
		noteParts: []string{"scanner t (version 1) recorded"},
	},
	{
		name:     "a scanner removed",
		rec:      mkState(guardABC, map[string]scannerRecord{"s": guardBase["s"], "t": {Version: "1", Hash: "h"}}),
		cur:      mkState(guardABC, guardBase),
		problems: []string{"scanner t is recorded but no longer enabled"},
	},
	{
		name: "a fixture added: not compared, to be recorded",
		rec:  mkState(mkCorpus("a", "b"), guardBase),
		cur: mkState(guardABC, map[string]scannerRecord{
			"s": {Version: "1", Hash: "h1", Outputs: mkOutputs("a", "d1", "b", "d2", "c", "d3")}}),
		problems: []string{"the fixture corpus changed (1 added, first c): record the scanners' outputs over it (no version bump is needed"},
	},
	{
		name: "a fixture added, recorded",
		rec:  mkState(mkCorpus("a", "b"), guardBase),
		cur: mkState(guardABC, map[string]scannerRecord{
			"s": {Version: "1", Hash: "h1", Outputs: mkOutputs("a", "d1", "b", "d2", "c", "d3")}}),
		update:    true,
		noteParts: []string{"the fixture corpus changed (1 added, first c): recorded"},
	},
	{
		name: "a fixture placed elsewhere: not compared",
		rec:  mkState(guardABC, guardBase),
		cur: mkState(map[string]corpusRecord{"a": {Input: "other"}, "b": guardABC["b"], "c": guardABC["c"], "d": {Input: "in-d"}},
			map[string]scannerRecord{"s": {Version: "1", Hash: "h1", Outputs: mkOutputs("a", "d1x", "b", "d2")}}),
		problems: []string{"the fixture corpus changed (1 added, first d; 1 with another input, first a)"},
	},
	{
		name: "the first differing fixture is named, with the scanner",
		rec: mkState(guardABC, map[string]scannerRecord{"s": guardBase["s"],
			"t": {Version: "3", Hash: "h", Outputs: mkOutputs("c", "x")}}),
		cur: mkState(guardABC, map[string]scannerRecord{
			"s": {Version: "1", Hash: "h1", Outputs: mkOutputs("a", "d1", "b", "d2x", "c", "d3")},
			"t": {Version: "3", Hash: "h", Outputs: mkOutputs("a", "y", "c", "x")}}),
		problems: []string{"scanner s: its output for fixture b changed", "scanner t: its output for fixture a changed"},
	},
}

// TestGuardRefactorOfASharedHelper shows that a refactor of a helper that
// several scanners share (scanner/internal/limitio) needs no version
// bump: the helper is changed in a copy of the scanners' code without
// changing what it does, which changes the code hash of every scanner that
// imports it; their outputs over the corpus, computed by the real
// scanners (whose behaviour the change preserves), are the recorded ones,
// so the guard passes, and says which code hashes to record.
func TestGuardRefactorOfASharedHelper(t *testing.T) {
	root := moduleRoot(t)
	ss := all.Default()
	was, now, changed := refactorSharedHelper(t, root, ss)

	// The recorded state, with the code hashes of the copy before the
	// refactor, and the current one of the scanners it touched, with their
	// code hashes after it.
	recAll, err := readState("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var touched []scanner.Scanner
	rec := guardState{Corpus: recAll.Corpus, Scanners: map[string]scannerRecord{}}
	for _, s := range ss {
		if name := s.Info().Name; slices.Contains(changed, name) {
			touched = append(touched, s)
			r := recAll.Scanners[name]
			r.Hash = was[name]
			rec.Scanners[name] = r
		}
	}
	cur := currentState(t, root, loadCorpus(t, root), touched)
	for name, s := range cur.Scanners {
		s.Hash = now[name]
		cur.Scanners[name] = s
	}
	problems, notes := check(rec, cur, false)
	if len(problems) > 0 {
		t.Fatalf("a refactor failed the guard: %q", problems)
	}
	var noted []string
	for _, n := range notes {
		if strings.Contains(n, "no version bump is needed") {
			noted = append(noted, strings.TrimSuffix(strings.Fields(n)[1], ":"))
		}
	}
	slices.Sort(changed)
	if !slices.Equal(noted, changed) {
		t.Errorf("notes %q name %q, want the scanners whose code changed, %q", notes, noted, changed)
	}
	t.Logf("the refactor changed the code of %q; outputs identical; notes: %q", changed, notes)
}

// refactorSharedHelper copies the scanners' code from root, refactors
// limitio.NewReader in the copy without changing what it does, and returns
// the code hash of every scanner of ss before and after, and the scanners
// whose hash changed (at least two: the helper is shared).
func refactorSharedHelper(t *testing.T, root string, ss []scanner.Scanner) (was, now map[string]string, changed []string) {
	t.Helper()
	tmp := t.TempDir()
	if err := copyTree(filepath.Join(root, "scanner"), filepath.Join(tmp, "scanner")); err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(tmp, "scanner", "internal", "limitio", "limitio.go")
	src, err := os.ReadFile(helper)
	if err != nil {
		t.Fatal(err)
	}
	// The refactor: a named result instead of a composite literal
	// returned directly.
	const before = "func NewReader(r io.Reader, n int64) *Reader { return &Reader{r: r, left: n} }"
	const after = "func NewReader(r io.Reader, n int64) *Reader {\n\tl := &Reader{r: r, left: n}\n\treturn l\n}"
	if !strings.Contains(string(src), before) {
		t.Fatalf("%s no longer holds %q: update this test's refactor", helper, before)
	}
	hashes := func() map[string]string {
		m := map[string]string{}
		for _, s := range ss {
			h, err := codeHash(tmp, pkgDir(s))
			if err != nil {
				t.Fatal(err)
			}
			m[s.Info().Name] = h
		}
		return m
	}
	was = hashes()
	if err := os.WriteFile(helper, []byte(strings.Replace(string(src), before, after, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	now = hashes()
	for _, s := range ss {
		if name := s.Info().Name; was[name] != now[name] {
			changed = append(changed, name)
		}
	}
	if len(changed) < 2 {
		t.Fatalf("the refactor changed the code hash of %q, want at least two scanners (a shared helper)", changed)
	}

	return was, now, changed
}

// TestGuardOneMorePackage shows that a change that finds one more package
// fails the guard, naming the scanner and the first fixture whose output
// differs, until the scanner's version is bumped and recorded: dpkg is
// replaced by a scanner that runs it and adds a package, over the real
// corpus.
func TestGuardOneMorePackage(t *testing.T) {
	recAll, err := readState("testdata")
	if err != nil {
		t.Fatal(err)
	}
	recDpkg, ok := recAll.Scanners["dpkg"]
	if !ok {
		t.Fatal("dpkg is not recorded")
	}
	// The fixture the guard must name: the first (in order) of the corpus
	// in which dpkg found packages.
	var first string
	for _, c := range slices.Sorted(maps.Keys(recDpkg.Outputs)) {
		if s := recDpkg.Outputs[c].Summary; strings.Contains(s, " packages=") && !strings.Contains(s, " packages=0 ") {
			first = c
			break
		}
	}
	if first == "" {
		t.Fatal("dpkg found no package in the corpus")
	}
	cases := loadCorpus(t, moduleRoot(t))
	rec := guardState{Corpus: recAll.Corpus, Scanners: map[string]scannerRecord{"dpkg": recDpkg}}
	run := func(version string) guardState {
		s := onePackageMore{dpkg.Scanner{}, version}
		outs, refused := runCorpus(t, cases, []scanner.Scanner{s})
		return guardState{Corpus: corpusRecords(cases, refused), Scanners: map[string]scannerRecord{
			"dpkg": {Version: version, Hash: recDpkg.Hash + "-changed", Outputs: outs["dpkg"]},
		}}
	}

	// Unbumped: a failure naming dpkg and the fixture, with or without
	// -update-versions.
	cur := run(recDpkg.Version)
	for _, update := range []bool{false, true} {
		problems, _ := check(rec, cur, update)
		want := "scanner dpkg: its output for fixture " + first + " changed"
		if len(problems) != 1 || !strings.Contains(problems[0], want) || !strings.Contains(problems[0], "bump its Version") {
			t.Errorf("update=%v: problems %q, want one saying %q and to bump", update, problems, want)
		}
	}

	// Bumped: a failure until recorded; recorded, a pass.
	cur = run(recDpkg.Version + "-bumped")
	problems, _ := check(rec, cur, false)
	if len(problems) != 1 || !strings.Contains(problems[0], "scanner dpkg is now version "+recDpkg.Version+"-bumped") {
		t.Errorf("bumped, not recorded: problems %q, want one asking to record dpkg", problems)
	}
	if problems, _ := check(rec, cur, true); len(problems) > 0 {
		t.Errorf("bumped, -update-versions: problems %q, want none", problems)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, outputsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeState(dir, cur); err != nil {
		t.Fatal(err)
	}
	recorded, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if problems, notes := check(recorded, cur, false); len(problems)+len(notes) > 0 {
		t.Errorf("bumped and recorded: problems %q, notes %q, want none", problems, notes)
	}
}

// onePackageMore is a scanner that finds one package more than its inner
// one wherever that finds any.
type onePackageMore struct {
	scanner.Scanner
	version string
}

func (s onePackageMore) Info() scanner.Info {
	in := s.Scanner.Info()
	in.Version = s.version
	return in
}

func (s onePackageMore) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	res, err := s.Scanner.Scan(ctx, files)
	if err != nil || res == nil || len(res.Packages) == 0 {
		return res, err
	}
	p := *res.Packages[0]
	p.Name += "-more"
	res.Packages = append(res.Packages, &report.Package{Name: p.Name, Version: p.Version, PackageDB: p.PackageDB})
	return res, nil
}
