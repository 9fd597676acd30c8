package all_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// The guard's corpus: every file of the fixture corpus (testdata/fixtures at
// the repository root) and of the scanner packages' own testdata
// directories, each made into a layer that holds it at the path where an
// image would (a dpkg status at var/lib/dpkg/status, a Go binary at usr/bin
// with its executable bits); the corpus's layers are read as they are.
// Every scanner sees every layer, through the real layer reader, as in
// production.

// A corpusCase is one layer of the guard's corpus.
type corpusCase struct {
	// Name names the case in the records: the fixture's path in the
	// corpus ("dpkg/trivy_valid.status"), or "scanners/<pkg>/testdata/<file>"
	// for a scanner package's own testdata.
	Name string
	// Where is where the fixture is in the layer ("var/lib/dpkg/status"),
	// or "layer" for a fixture that is itself a layer.
	Where string
	// Layer is the layer's bytes.
	Layer []byte
}

// inputDigest identifies a case's input: its layer's bytes, so that a
// change of the fixture or of where it is placed is a change of the corpus,
// not of a scanner's behaviour.
func (c corpusCase) inputDigest() string {
	sum := sha256.Sum256(c.Layer)
	return hex.EncodeToString(sum[:])
}

// placement says where a fixture goes in its layer, from its directory in
// the corpus and its name; base is the name without the source prefix
// ("valid.status" for "trivy_valid.status"). An empty result: the fixture
// is a layer of its own. The fixtures' names follow SOURCES.md:
// <source>_<name>, where name often ends with the file's name in an image.
func placement(dir, name string) (where string, mode int64) {
	base := name
	if _, rest, ok := strings.Cut(name, "_"); ok {
		base = rest
	}
	if isLayerFile(name) {
		return "", 0
	}
	switch dir {
	case "apk":
		return "lib/apk/db/installed", 0o644
	case "dpkg":
		if rest, ok := strings.CutPrefix(base, "status.d_"); ok {
			return "var/lib/dpkg/status.d/" + rest, 0o644
		}
		return "var/lib/dpkg/status", 0o644
	case "osrelease":
		if where, ok := osReleasePlacement(base); ok {
			return where, 0o644
		}
	case "rpm":
		if where, ok := rpmPlacement(base); ok {
			return where, 0o644
		}
	case "gobin":
		return "usr/bin/" + base, 0o755
	case "java":
		return "opt/app/lib/" + base, 0o644
	case "npm":
		return "app/node_modules/" + strings.TrimSuffix(strings.TrimSuffix(base, "_package.json"), ".json") + "/package.json", 0o644
	case "python":
		return pythonPlacement(base), 0o644
	case "ruby":
		return "usr/share/gems/specifications/" + base, 0o644
	case "conda/testdata":
		return "opt/conda/conda-meta/" + base, 0o644
	case "python/testdata":
		return "usr/lib/python3/site-packages/" + base, 0o644
	case "composer/testdata":
		return "var/www/" + strings.TrimSuffix(name, ".json") + "/vendor/composer/installed.json", 0o644
	case "dotnet/testdata":
		return "app/" + strings.TrimSuffix(name, ".deps.json") + "/App.deps.json", 0o644
	case "rust/testdata":
		if strings.Contains(base, ".lock") {
			return "app/" + name + "/Cargo.lock", 0o644
		}
		return "usr/bin/" + base, 0o755
	}
	return "opt/fixtures/" + dir + "/" + name, 0o644
}

// osReleasePlacement places an osrelease fixture; ok is false when its name
// says nothing of where it goes.
func osReleasePlacement(base string) (where string, ok bool) {
	for _, suffix := range []string{"os-release", "lsb-release", "debian_version", "system-release-cpe", "system-release"} {
		if strings.HasSuffix(base, "_"+suffix) || base == suffix {
			if suffix == "debian_version" {
				return "etc/debian_version", true
			}
			return "etc/" + suffix, true
		}
	}
	if i := strings.LastIndexByte(base, '_'); i >= 0 && strings.HasSuffix(base, "-release") {
		return "etc/" + base[i+1:], true
	}
	if strings.HasSuffix(base, ".txtar") {
		return "etc/os-release", true // its "os-release" section, see layerFor
	}
	return "", false
}

// rpmPlacement places an rpm fixture; ok is false when its name says
// nothing of where it goes.
func rpmPlacement(base string) (where string, ok bool) {
	switch {
	case strings.HasSuffix(base, "dnf4_history.sqlite"):
		return "var/lib/dnf/history.sqlite", true
	case strings.HasSuffix(base, "transaction_history.sqlite"):
		return "usr/lib/sysimage/libdnf5/transaction_history.sqlite", true
	case strings.HasSuffix(base, "Packages.db"):
		return "usr/lib/sysimage/rpm/Packages.db", true
	case strings.HasSuffix(base, ".sqlite"):
		return "var/lib/rpm/rpmdb.sqlite", true
	case strings.HasSuffix(base, "Packages") || strings.Contains(base, "Packages_"):
		return "var/lib/rpm/Packages", true
	case strings.Contains(base, "container-manifest"):
		return "root/buildinfo/content_manifests/" + base + ".json", true
	}
	return "", false
}

// pythonPlacement places a python fixture in site-packages.
func pythonPlacement(base string) string {
	const site = "usr/lib/python3/site-packages/"
	switch {
	case strings.HasSuffix(base, "_METADATA"):
		return site + strings.TrimSuffix(base, "_METADATA") + "/METADATA"
	case strings.HasSuffix(base, ".dist-info"):
		return site + base + "/METADATA"
	case strings.HasSuffix(base, "_PKG-INFO"):
		return site + strings.TrimSuffix(base, "_PKG-INFO") + "/PKG-INFO"
	case strings.HasSuffix(base, ".PKG-INFO"):
		return site + strings.TrimSuffix(base, ".PKG-INFO") + ".egg-info/PKG-INFO"
	default:
		return site + base
	}
}

// isLayerFile reports whether a fixture is a layer (a tar, possibly
// compressed).
func isLayerFile(name string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".layer"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// notInputs are the files of the corpus directory that are not test data.
var notInputs = map[string]bool{"README.md": true, "SHA256SUMS": true, "SOURCES.md": true}

// loadCorpus builds the guard's corpus, sorted by name.
func loadCorpus(t testing.TB, root string) []corpusCase {
	t.Helper()
	var out []corpusCase
	dir := filepath.Dir(fixtures.Path(t, "SOURCES.md"))
	walk := func(dir, prefix string, skip func(rel string) bool) {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if skip(rel) {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if isLayerFile(rel) {
				// A docker-save image is not a layer: its layers are.
				inner, err := dockerSaveLayers(data)
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				for _, l := range inner {
					out = append(out, corpusCase{Name: prefix + rel + "!" + l.name, Where: "layer", Layer: l.data})
				}
				if len(inner) > 0 {
					return nil
				}
			}
			c, err := layerFor(prefix+rel, path.Dir(rel), path.Base(rel), data)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			out = append(out, c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	walk(dir, "", func(rel string) bool { return notInputs[rel] || strings.HasPrefix(rel, "LICENSES/") })
	// The scanner packages' own testdata, but not this package's records.
	scannersDir := filepath.Join(root, "scanner")
	walk(scannersDir, "scanners/", func(rel string) bool {
		return !strings.Contains("/"+rel, "/testdata/") || strings.HasPrefix(rel, "all/") || path.Base(rel) == "SOURCES.md"
	})
	combined, err := combinedCases(dir)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, combined...)
	slices.SortFunc(out, func(a, b corpusCase) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// layerFor makes the case of the fixture name (in directory dir of the
// corpus) whose contents are data.
func layerFor(caseName, dir, name string, data []byte) (corpusCase, error) {
	where, mode := placement(dir, name)
	if where == "" {
		return corpusCase{Name: caseName, Where: "layer", Layer: data}, nil
	}
	if strings.HasSuffix(name, ".txtar") {
		if sec, ok := txtarSection(data, "os-release"); ok {
			data = sec
		}
	}
	layer, err := makeLayer([]entry{{where, mode, data}})
	return corpusCase{Name: caseName, Where: where, Layer: layer}, err
}

// entry is a regular file of a layer.
type entry struct {
	path string
	mode int64
	data []byte
}

// makeLayer returns an uncompressed layer of the entries, in order.
func makeLayer(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.path, Mode: e.mode, Size: int64(len(e.data)), Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// combinations are layers of several fixtures, for what scanners read
// from more than one file: rpm's repository hints from a dnf history, the
// RHEL content manifests' use of it, an os-release beside a legacy release
// file. Each names fixtures of the corpus and where they go.
var combinations = []struct {
	name  string
	files [][2]string // fixture, path in the layer
}{
	{"rpmdb.sqlite+dnf4-history", [][2]string{
		{"rpm/go-rpmdb_cbl-mariner-2.0_rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite"},
		{"rpm/claircore_dnf4_history.sqlite", "var/lib/dnf/history.sqlite"}}},
	{"rpmdb.sqlite+dnf5-history", [][2]string{
		{"rpm/go-rpmdb_amazonlinux2023-plain_rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite"},
		{"rpm/claircore_dnf5_transaction_history.sqlite", "usr/lib/sysimage/libdnf5/transaction_history.sqlite"}}},
	{"content-manifest+dnf4-history", [][2]string{
		{"rpm/syft_container-manifest-2", "root/buildinfo/content_manifests/container-manifest-2.json"},
		{"rpm/claircore_dnf4_history.sqlite", "var/lib/dnf/history.sqlite"}}},
	{"os-release+redhat-release", [][2]string{
		{"osrelease/claircore_rhel-releasefiles-8_redhat-release", "etc/redhat-release"},
		{"osrelease/claircore_debian-12_os-release", "usr/lib/os-release"}}},
	{"apk+os-release+alpine-release", [][2]string{
		{"apk/trivy_alpine-310_installed", "lib/apk/db/installed"},
		{"osrelease/trivy_alpine-310_os-release", "etc/os-release"},
		{"osrelease/trivy_alpine-310_alpine-release", "etc/alpine-release"}}},
}

// combinedCases makes the layers of combinations, named
// "combined/<name>", from the corpus directory dir.
func combinedCases(dir string) ([]corpusCase, error) {
	var out []corpusCase
	for _, c := range combinations {
		var entries []entry
		var where []string
		for _, f := range c.files {
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f[0])))
			if err != nil {
				return nil, fmt.Errorf("combined case %s: %w", c.name, err)
			}
			entries = append(entries, entry{f[1], 0o644, data})
			where = append(where, f[1])
		}
		layer, err := makeLayer(entries)
		if err != nil {
			return nil, err
		}
		out = append(out, corpusCase{Name: "combined/" + c.name, Where: strings.Join(where, ","), Layer: layer})
	}
	return out, nil
}

type namedLayer struct {
	name string
	data []byte
}

// dockerSaveLayers returns the layers (the "<id>/layer.tar" entries) of
// data if it is a docker-save image, gzipped or not, and none otherwise.
func dockerSaveLayers(data []byte) ([]namedLayer, error) {
	var r io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	var out []namedLayer
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, nil // not a tar: not a docker-save image
		}
		if hdr.Typeflag != tar.TypeReg || path.Base(hdr.Name) != "layer.tar" {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out = append(out, namedLayer{hdr.Name, b})
	}
}

// txtarSection returns the section name of a txtar archive ("-- name --"
// header lines).
func txtarSection(data []byte, name string) ([]byte, bool) {
	var out []byte
	in, found := false, false
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if strings.HasPrefix(s, "-- ") && strings.HasSuffix(s, " --") && len(s) > 6 {
			in = s[3:len(s)-3] == name
			found = found || in
			continue
		}
		if in {
			out = append(out, line...)
		}
	}
	return out, found
}

// outputs is what one scanner made of the corpus: the digest of its
// canonical output per case, for the cases where it found something or
// failed (an empty result is left out).
type outputs map[string]output

// output is a scanner's output for one case.
type output struct {
	// Digest is the sha256 of the canonical output.
	Digest string
	// Summary says what the output holds, for people reading the records
	// and the guard's messages (not compared).
	Summary string
}

// emptyDigest is the digest of the canonical form of an empty result.
var emptyDigest = digestOf(canonical(nil, &scanner.Result{}, nil))

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// runCorpus reads every case's layer with the scanners ss, as the layer
// reader does in production (one read, every scanner), scans what each
// matched, and returns each scanner's outputs, by name, and the cases whose
// layer the reader refused, with its error. A refused layer gives no
// scanner anything: that is the layer reader's behaviour, not a scanner's.
func runCorpus(t testing.TB, cases []corpusCase, ss []scanner.Scanner) (map[string]outputs, map[string]string) {
	t.Helper()
	outs := make([][]output, len(cases)) // by case, by scanner
	refused := make([]error, len(cases))
	tmp := t.TempDir()
	work := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				outs[i], refused[i] = runCase(tmp, cases[i], ss)
			}
		}()
	}
	for i := range cases {
		work <- i
	}
	close(work)
	wg.Wait()
	all := map[string]outputs{}
	for j, s := range ss {
		o := outputs{}
		for i, c := range cases {
			if outs[i][j].Digest != emptyDigest {
				o[c.Name] = outs[i][j]
			}
		}
		all[s.Info().Name] = o
	}
	bad := map[string]string{}
	for i, err := range refused {
		if err != nil {
			bad[cases[i].Name] = oneLine(err.Error(), 120)
		}
	}
	return all, bad
}

// runCase reads one case's layer with ss and scans what each matched. A
// layer the reader refuses gives every scanner an empty output, and the
// reader's error.
func runCase(tmp string, c corpusCase, ss []scanner.Scanner) ([]output, error) {
	ctx := context.Background()
	outs := make([]output, len(ss))
	empty := &scanner.Result{}
	for j := range outs {
		outs[j] = summarize(nil, empty, nil)
	}
	contents, err := layer.Read(ctx, bytes.NewReader(c.Layer), report.Digest("sha256:"+c.inputDigest()), ss, layer.Options{TempDir: tmp})
	if err != nil {
		return outs, err
	}
	defer contents.Close()
	for j, s := range ss {
		// As the indexer does: every scanner is called, with the files
		// it matched (perhaps none), and those files' paths are stored
		// with its result.
		files := make([]string, len(contents.Files[j]))
		for k, f := range contents.Files[j] {
			files[k] = f.Path()
		}
		res, err := s.Scan(ctx, contents.Files[j])
		if res == nil {
			res = empty
		}
		outs[j] = summarize(files, res, err)
	}
	return outs, nil
}

// summarize makes the output of a scan of the matched files that returned
// res and err.
func summarize(files []string, res *scanner.Result, err error) output {
	o := output{Digest: digestOf(canonical(files, res, err))}
	if err != nil {
		o.Summary = "error: " + oneLine(err.Error(), 120)
		return o
	}
	o.Summary = fmt.Sprintf("files=%d packages=%d distributions=%d repositories=%d owned-files=%d",
		len(files), len(res.Packages), len(res.Distributions), len(res.Repositories), len(res.OwnedFiles))
	switch {
	case len(res.Packages) > 0:
		p := res.Packages[0]
		o.Summary += " first=" + oneLine(p.Name+" "+p.Version, 80)
	case len(res.Distributions) > 0:
		o.Summary += " first=" + oneLine(res.Distributions[0].DID+" "+res.Distributions[0].VersionID, 80)
	case len(res.Repositories) > 0:
		o.Summary += " first=" + oneLine(res.Repositories[0].Name, 80)
	}
	return o
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// canonical is the canonical form of a scanner's output: the paths of the
// files it matched (stored with its result), every exported field of what
// it found (including those that JSON leaves out, such as a
// package's database path), in the order the scanner gave them, maps by
// sorted key; or its error. Warnings are not part of it: they are logged,
// not stored, so a change to them does not make a report stale.
func canonical(files []string, res *scanner.Result, err error) []byte {
	var b bytes.Buffer
	encode(&b, reflect.ValueOf(files))
	b.WriteByte('\n')
	if err != nil {
		b.WriteString("error ")
		b.WriteString(strconv.Quote(err.Error()))
		return b.Bytes()
	}
	encode(&b, reflect.ValueOf(struct {
		Packages      []*report.Package
		Distributions []*report.Distribution
		Repositories  []*report.Repository
		OwnedFiles    []string
	}{res.Packages, res.Distributions, res.Repositories, res.OwnedFiles}))
	return b.Bytes()
}

// encode writes v in a JSON-like form that names every exported field.
func encode(b *bytes.Buffer, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("null")
			return
		}
		encode(b, v.Elem())
	case reflect.Struct:
		b.WriteByte('{')
		n := 0
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			b.WriteString(strconv.Quote(f.Name))
			b.WriteByte(':')
			encode(b, v.Field(i))
		}
		b.WriteByte('}')
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteByte(',')
			}
			encode(b, v.Index(i))
		}
		b.WriteByte(']')
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, c reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(c)) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(fmt.Sprint(k)))
			b.WriteByte(':')
			encode(b, v.MapIndex(k))
		}
		b.WriteByte('}')
	case reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	default:
		fmt.Fprintf(b, "%v", v.Interface())
	}
}
