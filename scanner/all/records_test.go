package all_test

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The guard's records, under testdata:
//
//   - versions.txt: "<scanner> <version> <code hash>" per line;
//   - outputs/corpus.txt: "<case>\t<sha256 of its layer>\t<where the fixture
//     is in the layer>[\t<the layer reader's refusal>]" per case;
//   - outputs/<scanner>.txt: "<case>\t<sha256 of the canonical
//     output>\t<summary>" per case where the scanner matched a file, found
//     something or failed (a case not listed had an empty output).
//
// Lines starting with "#" are comments.

const versionsFile = "versions.txt"

const outputsDir = "outputs"

// readState reads the records under dir.
func readState(dir string) (guardState, error) {
	st := guardState{Corpus: map[string]corpusRecord{}, Scanners: map[string]scannerRecord{}}
	err := readLines(filepath.Join(dir, versionsFile), " ", 3, 3, func(f []string) error {
		st.Scanners[f[0]] = scannerRecord{Version: f[1], Hash: f[2], Outputs: outputs{}}
		return nil
	})
	if err != nil {
		return st, err
	}
	err = readLines(filepath.Join(dir, outputsDir, "corpus.txt"), "\t", 3, 4, func(f []string) error {
		r := corpusRecord{Input: f[1], Where: f[2]}
		if len(f) == 4 {
			r.Note = f[3]
		}
		st.Corpus[f[0]] = r
		return nil
	})
	if err != nil {
		return st, err
	}
	for name, s := range st.Scanners {
		err := readLines(filepath.Join(dir, outputsDir, name+".txt"), "\t", 3, 3, func(f []string) error {
			s.Outputs[f[0]] = output{Digest: f[1], Summary: f[2]}
			return nil
		})
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// readLines calls fn with the fields (separated by sep, min to max of them)
// of each line of the file that is not empty or a comment.
func readLines(file, sep string, min, max int, fn func([]string) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var fields []string
		if sep == " " {
			fields = strings.Fields(line)
		} else {
			fields = strings.Split(line, sep)
		}
		if len(fields) < min || len(fields) > max || slices.Contains(fields[:min], "") {
			return fmt.Errorf("%s:%d: want %d to %d fields separated by %q, got %q", file, n, min, max, sep, line)
		}
		if err := fn(fields); err != nil {
			return fmt.Errorf("%s:%d: %w", file, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// writeState replaces the records under dir with st.
func writeState(dir string, st guardState) error {
	var b strings.Builder
	b.WriteString("# scanner version code-hash: maintained by " + how + "\n")
	for _, name := range slices.Sorted(maps.Keys(st.Scanners)) {
		fmt.Fprintf(&b, "%s %s %s\n", name, st.Scanners[name].Version, st.Scanners[name].Hash)
	}
	if err := os.WriteFile(filepath.Join(dir, versionsFile), []byte(b.String()), 0o644); err != nil {
		return err
	}
	out := filepath.Join(dir, outputsDir)
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	b.Reset()
	b.WriteString("# case\tsha256 of its layer\twhere the fixture is in the layer[\tthe layer reader's refusal]: maintained by " + how + "\n")
	for _, name := range slices.Sorted(maps.Keys(st.Corpus)) {
		c := st.Corpus[name]
		fmt.Fprintf(&b, "%s\t%s\t%s", name, c.Input, c.Where)
		if c.Note != "" {
			fmt.Fprintf(&b, "\t%s", c.Note)
		}
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(out, "corpus.txt"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(st.Scanners)) {
		if strings.ContainsAny(name, `/\`) || name == "corpus" {
			return errors.New("scanner name " + name + " cannot name a file of " + out)
		}
		b.Reset()
		b.WriteString("# case\tsha256 of the canonical output\tsummary (cases not listed: empty output): maintained by " + how + "\n")
		o := st.Scanners[name].Outputs
		for _, c := range slices.Sorted(maps.Keys(o)) {
			fmt.Fprintf(&b, "%s\t%s\t%s\n", c, o[c].Digest, o[c].Summary)
		}
		if err := os.WriteFile(filepath.Join(out, name+".txt"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
