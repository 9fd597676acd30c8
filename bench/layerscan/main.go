// Command layerscan measures what reading a layer with all the default
// scanners costs, against the floor of only decompressing and walking the
// same tar, and shows that the memory a read needs does not grow with the
// layer's size.
//
// It builds synthetic but realistic layers (gzip-compressed, in a temporary
// directory): many text files of mixed sizes, incompressible assets, real
// shared libraries and ELF executables of this machine, the Go toolchain's
// own binaries and the fixture corpus's Go binaries, jars and wars, package
// databases (dpkg, apk), thousands of Python, npm and Ruby package
// manifests. Then, for each layer, it runs each mode in a child process of
// its own (so that their peak RSS does not mix), several times, alternating:
//
//   - walk: gzip-decompress and walk the tar headers, nothing else;
//   - scan: layer.Read with scanners/all.Default() (hash, decompress,
//     walk, match, keep, verify the digest) and every scanner's Scan.
//
// and prints, per layer, the median CPU and wall time of each mode, their
// ratio, and each mode's peak RSS (VmHWM from /proc/self/status, or
// getrusage's maxrss).
//
//	go run ./bench/layerscan                   # 256 MiB and 1 GiB layers, 3 runs each
//	go run ./bench/layerscan -sizes 1GiB -reps 5
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/stevedore-dev/stevedore/internal/iocount"
	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/testing/cputime"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner/all"
)

func main() {
	var (
		sizes     = flag.String("sizes", "256MiB,1GiB", "uncompressed sizes of the layers to build, comma-separated")
		reps      = flag.Int("reps", 3, "runs of each mode per layer")
		dir       = flag.String("dir", "", "where to put the layers and spooled files (default: a new directory in the system's temporary directory)")
		keep      = flag.Bool("keep", false, "keep the layers built")
		fixtures  = flag.String("fixtures", "", "the fixture corpus (default: <module root>/testdata/fixtures)")
		child     = flag.String("child", "", "internal: run one mode (walk or scan) on -layer and print its measures")
		layerFile = flag.String("layer", "", "internal: the layer file of a child")
		digest    = flag.String("digest", "", "internal: the layer's digest, for a scan child")
		cpuprof   = flag.String("cpuprofile", "", "write a CPU profile of each child to this file, suffixed with the mode and the run")
	)
	flag.Parse()
	if *child != "" {
		if *cpuprof != "" {
			f, err := os.Create(*cpuprof)
			if err != nil {
				fmt.Fprintln(os.Stderr, "layerscan child:", err)
				os.Exit(1)
			}
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		if err := runChild(*child, *layerFile, report.Digest(*digest), *dir); err != nil {
			fmt.Fprintln(os.Stderr, "layerscan child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*sizes, *reps, *dir, *keep, *fixtures, *cpuprof); err != nil {
		fmt.Fprintln(os.Stderr, "layerscan:", err)
		os.Exit(1)
	}
}

// measure is what a child reports.
type measure struct {
	Mode         string `json:"mode"`
	WallNS       int64  `json:"wall_ns"`
	CPUNS        int64  `json:"cpu_ns"`
	PeakRSSKiB   int64  `json:"peak_rss_kib"`
	RSSSource    string `json:"rss_source"`
	Entries      int    `json:"entries"`
	Uncompressed int64  `json:"uncompressed"`
	Kept         int    `json:"kept"`
	Packages     int    `json:"packages"`
	Warnings     int    `json:"warnings"`
	// ReadCPUNS is the CPU time of layer.Read alone, ScanCPUNS that of
	// each scanner's Scan (scan mode).
	ReadCPUNS int64            `json:"read_cpu_ns,omitempty"`
	ScanCPUNS map[string]int64 `json:"scan_cpu_ns,omitempty"`
}

func run(sizeList string, reps int, dir string, keep bool, fixtureDir, cpuprof string) error {
	sizes, err := parseSizes(sizeList)
	if err != nil {
		return err
	}
	if reps < 1 {
		return fmt.Errorf("-reps: %d, want at least 1", reps)
	}
	if fixtureDir, err = fixtureCorpus(fixtureDir); err != nil {
		return err
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "layerscan-*")
		if err != nil {
			return err
		}
		dir = d
		if !keep {
			defer os.RemoveAll(dir)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := newSources(fixtureDir)
	if err != nil {
		return err
	}
	fmt.Printf("layerscan: %s, %d CPUs, GOMAXPROCS %d; layers in %s\n", runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0), dir)
	var rows []row
	for _, size := range sizes {
		r, err := measureLayer(self, size, reps, dir, keep, cpuprof, src)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	printTable(rows, reps)
	return nil
}

// parseSizes parses -sizes, a comma-separated list of sizes.
func parseSizes(sizeList string) ([]int64, error) {
	var sizes []int64
	for _, s := range strings.Split(sizeList, ",") {
		n, err := parseSize(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("-sizes: %w", err)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// fixtureCorpus returns the fixture corpus's directory (fixtureDir, or the
// module's testdata/fixtures by default), checking that it exists.
func fixtureCorpus(fixtureDir string) (string, error) {
	if fixtureDir == "" {
		root, err := fixtures.RepoRoot()
		if err != nil {
			return "", fmt.Errorf("%w: run from the repository, or give -fixtures", err)
		}
		fixtureDir = filepath.Join(root, "testdata", "fixtures")
	}
	if _, err := os.Stat(fixtureDir); err != nil {
		return "", fmt.Errorf("the fixture corpus is needed for real jars and Go binaries: %w", err)
	}
	return fixtureDir, nil
}

// row is the measures of one layer.
type row struct {
	size             int64
	compressed       int64
	files            int
	walk, read, scan []measure
}

// measureLayer builds a layer of size bytes in dir and runs each mode on
// it reps times, each run in a child process, printing each run.
func measureLayer(self string, size int64, reps int, dir string, keep bool, cpuprof string, src *sources) (row, error) {
	path := filepath.Join(dir, fmt.Sprintf("layer-%dMiB.tar.gz", size>>20))
	start := time.Now()
	info, err := build(path, size, src)
	if err != nil {
		return row{}, fmt.Errorf("building the %d MiB layer: %w", size>>20, err)
	}
	fmt.Printf("built %s: %d MiB uncompressed, %d MiB gzip, %d files (%s) in %v\n", filepath.Base(path),
		info.uncompressed>>20, info.compressed>>20, info.files, info.mix, time.Since(start).Round(time.Second))
	r := row{size: info.uncompressed, compressed: info.compressed, files: info.files}
	for i := 0; i < reps; i++ {
		// Alternate which mode goes first, so that drift on the
		// machine hits both.
		modes := []string{"walk", "read", "scan"}
		if i%2 == 1 {
			slices.Reverse(modes)
		}
		for _, mode := range modes {
			prof := ""
			if cpuprof != "" {
				prof = fmt.Sprintf("%s.%s.%d", cpuprof, mode, i+1)
			}
			m, err := runChildProcess(self, mode, path, info.digest, dir, prof)
			if err != nil {
				return row{}, err
			}
			switch mode {
			case "walk":
				r.walk = append(r.walk, m)
			case "read":
				r.read = append(r.read, m)
			default:
				r.scan = append(r.scan, m)
			}
			printRun(i+1, mode, m)
		}
	}
	if !keep {
		os.Remove(path)
	}
	return r, nil
}

// printRun prints the measures of one run of a mode.
func printRun(run int, mode string, m measure) {
	fmt.Printf("  run %d %-4s cpu %6.2fs wall %6.2fs peak RSS %4d MiB (%s)", run, mode, secs(m.CPUNS), secs(m.WallNS), m.PeakRSSKiB>>10, m.RSSSource)
	if mode == "scan" {
		fmt.Printf(" kept %d files, %d packages, %d warnings; CPU: layers.Read %.2fs", m.Kept, m.Packages, m.Warnings, secs(m.ReadCPUNS))
		for _, name := range slices.Sorted(maps.Keys(m.ScanCPUNS)) {
			if ns := m.ScanCPUNS[name]; ns >= 5e6 {
				fmt.Printf(", %s %.2fs", name, secs(ns))
			}
		}
	}
	fmt.Println()
}

// printTable prints the medians of every layer's runs as a Markdown table.
func printTable(rows []row, reps int) {
	fmt.Println()
	fmt.Println("| layer (uncompressed / gzip) | files | decompress+walk CPU (wall) | layers.Read, no scanner | layers.Read + all scanners' Scan | ratio CPU (wall) | peak RSS walk / scan |")
	fmt.Println("| --- | ---: | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		wc, ww := median(r.walk, cpuOf), median(r.walk, wallOf)
		rc, rw := median(r.read, cpuOf), median(r.read, wallOf)
		sc, sw := median(r.scan, cpuOf), median(r.scan, wallOf)
		fmt.Printf("| %d MiB / %d MiB | %d | %.2f s (%.2f s) | %.2f s (%.2f s), %.3f× | %.2f s (%.2f s) | **%.3f×** (%.3f×) | %d MiB / %d MiB |\n",
			r.size>>20, r.compressed>>20, r.files, secs(wc), secs(ww), secs(rc), secs(rw), float64(rc)/float64(wc),
			secs(sc), secs(sw), float64(sc)/float64(wc), float64(sw)/float64(ww),
			maxOf(r.walk, rssOf)>>10, maxOf(r.scan, rssOf)>>10)
	}
	fmt.Printf("(medians of %d runs per mode; peak RSS is the highest of the runs)\n", reps)
}

func cpuOf(m measure) int64  { return m.CPUNS }
func wallOf(m measure) int64 { return m.WallNS }
func rssOf(m measure) int64  { return m.PeakRSSKiB }

func median(ms []measure, f func(measure) int64) int64 {
	v := make([]int64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func maxOf(ms []measure, f func(measure) int64) int64 {
	var x int64
	for _, m := range ms {
		x = max(x, f(m))
	}
	return x
}

func secs(ns int64) float64 { return float64(ns) / 1e9 }

func runChildProcess(self, mode, layerFile string, digest report.Digest, dir, cpuprof string) (measure, error) {
	args := []string{"-child", mode, "-layer", layerFile, "-digest", string(digest), "-dir", dir}
	if cpuprof != "" {
		args = append(args, "-cpuprofile", cpuprof)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return measure{}, fmt.Errorf("%s child: %w", mode, err)
	}
	var m measure
	if err := json.Unmarshal(out, &m); err != nil {
		return measure{}, fmt.Errorf("%s child printed %q: %w", mode, out, err)
	}
	return m, nil
}

// runChild runs one mode on the layer file and prints its measures as JSON.
func runChild(mode, layerFile string, digest report.Digest, dir string) error {
	f, err := os.Open(layerFile)
	if err != nil {
		return err
	}
	defer f.Close()
	// A plain io.Reader, as a network stream would be: no fast path for
	// an *os.File.
	r := struct{ io.Reader }{f}
	m := measure{Mode: mode}
	cpu0, wall0 := cputime.Process(), time.Now()
	switch mode {
	case "walk":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		cr := &iocount.Reader{R: zr}
		tr := tar.NewReader(cr)
		for {
			_, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			m.Entries++
		}
		io.Copy(io.Discard, cr)
		m.Uncompressed = cr.N
	case "read", "scan":
		ss := all.Default()
		if mode == "read" {
			ss = nil // the layer reader alone: hash, decompress, walk, verify
		}
		c, err := layer.Read(context.Background(), r, digest, ss, layer.Options{TempDir: dir})
		if err != nil {
			return err
		}
		m.ReadCPUNS = int64(cputime.Process() - cpu0)
		m.Uncompressed = c.UncompressedBytes
		m.Warnings = len(c.Warnings)
		m.ScanCPUNS = map[string]int64{}
		for i, s := range ss {
			m.Kept += len(c.Files[i])
			t0 := cputime.Process()
			res, err := s.Scan(context.Background(), c.Files[i])
			m.ScanCPUNS[s.Info().Name] = int64(cputime.Process() - t0)
			if err != nil {
				c.Close()
				return fmt.Errorf("%s: %w", s.Info().Name, err)
			}
			m.Packages += len(res.Packages)
			m.Warnings += len(res.Warnings)
		}
		if err := c.Close(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	m.CPUNS, m.WallNS = int64(cputime.Process()-cpu0), time.Since(wall0).Nanoseconds()
	m.PeakRSSKiB, m.RSSSource = peakRSS()
	return json.NewEncoder(os.Stdout).Encode(m)
}

// peakRSS is the process's peak resident set size in KiB: VmHWM from
// /proc/self/status, else getrusage's maxrss.
func peakRSS() (int64, string) {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(v)
				if len(f) >= 1 {
					if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						return n, "VmHWM"
					}
				}
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		return int64(ru.Maxrss), "maxrss"
	}
	return 0, "unknown"
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return int64(n * float64(u.mult)), nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q (want a number of bytes, or with MiB, GiB)", s)
	}
	return n, nil
}

// hostFile is a file of this machine copied into the layers.
type hostFile struct {
	path string
	size int64
}

// sources are the real files the layers are made of.
type sources struct {
	fixtures     string
	sharedLibs   []hostFile // 0644 in the layer
	executables  []hostFile // non-Go ELF executables, 0755
	goBinaries   []hostFile // 0755
	jars         []hostFile
	pythonMeta   [][]byte
	npmManifests [][]byte
	gemspecs     [][]byte
	dpkgStatus   []byte
	apkInstalled []byte
	osRelease    []byte
}

func newSources(fixtures string) (*sources, error) {
	s := &sources{fixtures: fixtures}
	read := func(rel string) ([]byte, error) {
		return os.ReadFile(filepath.Join(fixtures, filepath.FromSlash(rel)))
	}
	var err error
	if s.dpkgStatus, err = read("dpkg/claircore_texlive.status"); err != nil {
		return nil, err
	}
	if s.apkInstalled, err = read("apk/trivy_alpine-310_installed"); err != nil {
		return nil, err
	}
	s.osRelease = []byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n")
	for glob, dst := range map[string]*[][]byte{
		"python/trivy_*METADATA": &s.pythonMeta,
		"npm/*_package.json":     &s.npmManifests,
		"ruby/*.gemspec":         &s.gemspecs,
	} {
		paths, _ := filepath.Glob(filepath.Join(fixtures, filepath.FromSlash(glob)))
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			*dst = append(*dst, b)
		}
		if len(*dst) == 0 {
			return nil, fmt.Errorf("no fixtures %s in %s", glob, fixtures)
		}
	}
	add := func(dst *[]hostFile, p string) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 && fi.Size() < 64<<20 {
			*dst = append(*dst, hostFile{p, fi.Size()})
		}
	}
	for _, g := range []string{"gobin/*", "java/*.jar", "java/*.war"} {
		paths, _ := filepath.Glob(filepath.Join(fixtures, filepath.FromSlash(g)))
		for _, p := range paths {
			if strings.HasPrefix(g, "gobin") {
				add(&s.goBinaries, p)
			} else {
				add(&s.jars, p)
			}
		}
	}
	// The Go toolchain's own binaries: real, large Go executables.
	goroot := ""
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		goroot = strings.TrimSpace(string(out))
	}
	for _, g := range []string{"bin/*", "pkg/tool/*/*"} {
		if goroot == "" {
			break
		}
		paths, _ := filepath.Glob(filepath.Join(goroot, g))
		for _, p := range paths {
			add(&s.goBinaries, p)
		}
	}
	// This machine's ELF files: shared libraries and executables.
	for _, g := range []string{"/usr/lib/x86_64-linux-gnu/*.so*", "/usr/lib/aarch64-linux-gnu/*.so*", "/usr/lib64/*.so*"} {
		paths, _ := filepath.Glob(g)
		for _, p := range paths {
			if isELF(p) {
				add(&s.sharedLibs, p)
			}
		}
	}
	paths, _ := filepath.Glob("/usr/bin/*")
	for _, p := range paths {
		if isELF(p) && !isGo(p) {
			add(&s.executables, p)
		}
	}
	if len(s.goBinaries) == 0 || len(s.jars) == 0 {
		return nil, fmt.Errorf("no Go binaries or jars in %s", fixtures)
	}
	return s, nil
}

func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && string(b[:]) == "\x7fELF"
}

func isGo(p string) bool {
	b, err := os.ReadFile(p)
	return err == nil && bytes.Contains(b, []byte("\xff Go buildinf:"))
}

// built is what build made.
type built struct {
	digest                   report.Digest
	compressed, uncompressed int64
	files                    int
	mix                      string
}

// build writes a gzip-compressed layer of about size uncompressed bytes.
// The mix, by bytes: 45% text (docs, Python and JavaScript sources,
// configuration), 10% incompressible assets, 15% shared libraries (0644),
// 10% ELF executables that are not Go (0755), 12% Go binaries (0755), 8%
// jars and wars; plus, per GiB, a dpkg status database (357 packages), an
// apk database, os-release, 400 Python distributions, 3,000 npm packages
// and 150 gems.
func build(path string, size int64, src *sources) (built, error) {
	f, err := os.Create(path)
	if err != nil {
		return built{}, err
	}
	defer f.Close()
	h := sha256.New()
	cw := &iocount.Writer{W: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	zw := gzip.NewWriter(bw)
	uw := &iocount.Writer{W: zw}
	tw := tar.NewWriter(uw)
	rng := rand.New(rand.NewPCG(uint64(size), 42))
	b := &builder{tw: tw, rng: rng, src: src, counts: map[string]int{}}
	b.words()

	if err := b.databases(size); err != nil {
		return built{}, err
	}
	if err := b.bulk(uw, size); err != nil {
		return built{}, err
	}
	if err := tw.Close(); err != nil {
		return built{}, err
	}
	if err := zw.Close(); err != nil {
		return built{}, err
	}
	if err := bw.Flush(); err != nil {
		return built{}, err
	}
	var mix []string
	for _, k := range []string{"db", "python", "npm", "ruby", "text", "assets", "libs", "executables", "go", "jars"} {
		mix = append(mix, fmt.Sprintf("%s %d", k, b.counts[k]))
	}
	return built{
		digest:       report.Digest("sha256:" + hex.EncodeToString(h.Sum(nil))),
		compressed:   cw.N,
		uncompressed: uw.N,
		files:        b.files,
		mix:          strings.Join(mix, ", "),
	}, f.Close()
}

// databases writes os-release, the package databases and, per GiB of
// size, 400 Python distributions, 3,000 npm packages and 150 gems.
func (b *builder) databases(size int64) error {
	src := b.src
	perGiB := func(n int) int { return max(1, int(int64(n)*size/(1<<30))) }
	if err := b.bytesFile("etc/os-release", 0o644, src.osRelease, "db"); err != nil {
		return err
	}
	if err := b.bytesFile("var/lib/dpkg/status", 0o644, src.dpkgStatus, "db"); err != nil {
		return err
	}
	if err := b.bytesFile("lib/apk/db/installed", 0o644, src.apkInstalled, "db"); err != nil {
		return err
	}
	for i := 0; i < perGiB(400); i++ {
		meta := src.pythonMeta[i%len(src.pythonMeta)]
		if err := b.bytesFile(fmt.Sprintf("usr/lib/python3/site-packages/pkg%d-1.%d.dist-info/METADATA", i, i), 0o644, meta, "python"); err != nil {
			return err
		}
	}
	for i := 0; i < perGiB(3000); i++ {
		pj := src.npmManifests[i%len(src.npmManifests)]
		if err := b.bytesFile(fmt.Sprintf("app/node_modules/dep%d/package.json", i), 0o644, pj, "npm"); err != nil {
			return err
		}
	}
	for i := 0; i < perGiB(150); i++ {
		if err := b.bytesFile(fmt.Sprintf("usr/local/bundle/specifications/gem%d-1.0.gemspec", i), 0o644, src.gemspecs[i%len(src.gemspecs)], "ruby"); err != nil {
			return err
		}
	}
	return nil
}

// share is one kind of file of the layer's bulk, with its weight in bytes.
type share struct {
	name   string
	weight int64
	write  func(i int) error
}

// shares are the kinds of files of the layer's bulk.
func (b *builder) shares() []share {
	src := b.src
	return []share{
		{"text", 45, func(i int) error {
			dirs := []string{"usr/share/doc/pkg%d/file%d.txt", "usr/lib/python3/site-packages/mod%d/x%d.py", "app/node_modules/dep%d/lib/f%d.js", "etc/conf%d/c%d.conf"}
			return b.text(fmt.Sprintf(dirs[i%len(dirs)], i%500, i), 1<<10+b.rng.Int64N(200<<10))
		}},
		{"assets", 10, func(i int) error {
			return b.random(fmt.Sprintf("usr/share/assets/a%d.png", i), 16<<10+b.rng.Int64N(1<<20))
		}},
		{"libs", 15, func(i int) error {
			return b.host(src.sharedLibs, i, "usr/lib/x86_64-linux-gnu/lib%d-%s", 0o644, "libs", 1<<20)
		}},
		{"executables", 10, func(i int) error {
			return b.host(src.executables, i, "usr/bin/exe%d-%s", 0o755, "executables", 512<<10)
		}},
		{"go", 12, func(i int) error {
			return b.host(src.goBinaries, i, "usr/local/bin/go%d-%s", 0o755, "go", 4<<20)
		}},
		{"jars", 8, func(i int) error {
			return b.host(src.jars, i, "opt/app/lib/j%d-%s", 0o644, "jars", 1<<20)
		}},
	}
}

// bulk writes the layer's bulk, interleaved as in a real layer, until uw
// has counted size uncompressed bytes.
func (b *builder) bulk(uw *iocount.Writer, size int64) error {
	shares := b.shares()
	var total int64
	for _, s := range shares {
		total += s.weight
	}
	written := map[string]int64{}
	for i := 0; uw.N < size; i++ {
		// The share furthest below its target goes next.
		best, bestGap := 0, int64(-1<<62)
		for k, s := range shares {
			gap := size*s.weight/total - written[s.name]
			if gap > bestGap {
				best, bestGap = k, gap
			}
		}
		before := uw.N
		if err := shares[best].write(i); err != nil {
			return err
		}
		written[shares[best].name] += uw.N - before
	}
	return nil
}

// builder writes the layer's members.
type builder struct {
	tw     *tar.Writer
	rng    *rand.Rand
	src    *sources
	vocab  [][]byte
	buf    []byte
	files  int
	counts map[string]int
}

func (b *builder) words() {
	b.vocab = make([][]byte, 2048)
	for i := range b.vocab {
		w := make([]byte, 2+b.rng.IntN(10))
		for j := range w {
			w[j] = byte('a' + b.rng.IntN(26))
		}
		b.vocab[i] = append(w, " \n\t.,(){}="[b.rng.IntN(10)])
	}
}

func (b *builder) header(name string, mode, size int64) error {
	b.files++
	return b.tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
}

func (b *builder) bytesFile(name string, mode int64, data []byte, kind string) error {
	b.counts[kind]++
	if err := b.header(name, mode, int64(len(data))); err != nil {
		return err
	}
	_, err := b.tw.Write(data)
	return err
}

// text writes word-like text, about 3:1 under gzip.
func (b *builder) text(name string, size int64) error {
	b.counts["text"]++
	b.buf = b.buf[:0]
	for int64(len(b.buf)) < size {
		if b.rng.IntN(10) == 0 {
			for k := 0; k < 8; k++ {
				b.buf = append(b.buf, byte(b.rng.Uint32()))
			}
		} else {
			b.buf = append(b.buf, b.vocab[b.rng.IntN(len(b.vocab))]...)
		}
	}
	b.buf = b.buf[:size]
	if err := b.header(name, 0o644, size); err != nil {
		return err
	}
	_, err := b.tw.Write(b.buf)
	return err
}

// random writes incompressible bytes.
func (b *builder) random(name string, size int64) error {
	b.counts["assets"]++
	if int64(cap(b.buf)) < size {
		b.buf = make([]byte, size)
	}
	b.buf = b.buf[:size]
	for i := 0; i+8 <= len(b.buf); i += 8 {
		v := b.rng.Uint64()
		for k := 0; k < 8; k++ {
			b.buf[i+k] = byte(v >> (8 * k))
		}
	}
	if err := b.header(name, 0o644, size); err != nil {
		return err
	}
	_, err := b.tw.Write(b.buf)
	return err
}

// host copies the i-th (cycling) of files under a new name; without any,
// it writes fallback bytes of random text.
func (b *builder) host(files []hostFile, i int, pattern string, mode int64, kind string, fallback int64) error {
	if len(files) == 0 {
		return b.text(fmt.Sprintf(pattern, i, "synthetic"), fallback)
	}
	hf := files[i%len(files)]
	b.counts[kind]++
	f, err := os.Open(hf.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := b.header(fmt.Sprintf(pattern, i, filepath.Base(hf.path)), mode, hf.size); err != nil {
		return err
	}
	n, err := io.Copy(b.tw, io.LimitReader(f, hf.size))
	if err == nil && n != hf.size {
		err = fmt.Errorf("%s changed size while copied", hf.path)
	}
	return err
}
