// Command imagecost measures issue 13's scan cost (goal 2): for each image,
// the time to index it beside its physical floor, in one run.
//
//   - floor: for every layer of the image, one after the other, the sha256
//     of its compressed blob, then inflating it (klauspost's gzip, or zstd
//     with the layer reader's decoder options) and walking its tar, every
//     entry read whole; in this process, from memory.
//   - index-only: POST /api/v1/index with the image's reference to a node
//     (dispatcher and one worker, embedded JetStream, fresh schema of
//     DATABASE_URL, as `stevedore serve` runs them, in this process), to its
//     terminal state: Clair's POST index_report of the same manifest (the
//     bench resolves it before the clock starts) answers once the report
//     is terminal; with -poll, GET index_report at that interval instead.
//
// The images, served by an in-process registry (internal/testing/devregistry)
// over loopback: a real Debian bookworm minbase root filesystem
// (scripts/build-debian-rootfs.sh, cached in ~/.cache/stevedore) as one
// gzip layer and as one zstd layer, the same for trixie when debootstrap can
// build it, the Go toolchain's binaries (bin and pkg/tool), a node_modules
// tree installed with npm, the jars of 23 Debian packages of Java libraries
// (Guava, Jackson, Log4j, Netty, Spring, Tomcat...) as files and inside one
// Spring Boot-style jar, bookworm split in three layers plus a layer of
// Go binaries, and a tiny image whose time beyond its floor is the per-job
// overhead. Every cycle makes every layer new (one small file of the
// cycle's own appended to its tar, as a gzip member or zstd frame of its
// own), so each index reads every layer; the node's blob cache is emptied
// between cycles. Each cycle measures every image's floor and index-only
// time one after the other; the command prints their medians over the
// cycles and the median of the per-cycle ratios.
//
//	go run ./bench/imagecost
//	go run ./bench/imagecost -cycles 5 -cpuprofile /tmp/imagecost.prof
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/stevedore-dev/stevedore/bench/internal/benchdb"
)

// defaultJavaPackages are the Debian packages whose jars make the Java
// images: 145 jars, 51 MB, in bookworm.
const defaultJavaPackages = "libguava-java,libcommons-lang3-java,libjackson2-databind-java,libjackson2-core-java,libjackson2-annotations-java," +
	"liblog4j2-java,libslf4j-java,libnetty-java,libcommons-io-java,libcommons-codec-java,libhttpclient-java,libhttpcore-java,libjetty9-java," +
	"libguice-java,libasm-java,libbcprov-java,libspring-core-java,libspring-beans-java,libspring-context-java,libhibernate-validator-java," +
	"libjaxb-api-java,libeclipselink-java,libtomcat9-java"

func main() {
	home, _ := os.UserHomeDir()
	cache := filepath.Join(home, ".cache", "stevedore")
	var (
		cycles   = flag.Int("cycles", 3, "measurement cycles (each indexes every image once, new digests)")
		bookworm = flag.String("bookworm", filepath.Join(cache, "debian-bookworm-minbase.tar.gz"), "Debian 12 root filesystem (built when missing)")
		trixie   = flag.String("trixie", filepath.Join(cache, "debian-trixie-minbase.tar.gz"), "Debian 13 root filesystem (built when missing; skipped when that fails)")
		npmDir   = flag.String("npm-dir", filepath.Join(cache, "imagecost-npm"), "directory whose node_modules is the node image (npm install of -npm-packages when missing)")
		npmPkgs  = flag.String("npm-packages", "express,lodash,react,react-dom,typescript,webpack,eslint,@babel/core,axios,moment", "packages installed when -npm-dir has no node_modules")
		javaDir  = flag.String("java-dir", filepath.Join(cache, "imagecost-java"), "directory whose root holds the Java images' jars (apt-get download of -java-packages when missing; skipped when that fails)")
		javaPkgs = flag.String("java-packages", defaultJavaPackages, "Debian packages of Java libraries whose jars make the Java images")
		goroot   = flag.String("goroot", "", "Go installation whose bin and pkg/tool make the Go image (default: go env GOROOT)")
		only     = flag.String("only", "", "measure only the images whose name contains one of these comma-separated words")
		poll     = flag.Duration("poll", 0, "poll GET index_report at this interval for the terminal state (default: wait with Clair's POST index_report, no polling)")
		spans    = flag.Bool("spans", false, "also print each image's job spans (median over the cycles)")
		cpuProf  = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		dbURL    = benchdb.URLFlag("a fresh schema is used and dropped")
	)
	flag.Parse()
	ctx := context.Background()
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		benchdb.ExitOn("imagecost", err)
		benchdb.ExitOn("imagecost", pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	nm, err := installNodeModules(ctx, *npmDir, strings.Split(*npmPkgs, ","))
	benchdb.ExitOn("imagecost", err)
	if *goroot == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		benchdb.ExitOn("imagecost", err)
		*goroot = strings.TrimSpace(string(out))
	}
	jars, err := installJars(ctx, *javaDir, strings.Split(*javaPkgs, ","))
	if err != nil {
		fmt.Fprintf(os.Stderr, "imagecost: no Java images: %v\n", err)
		jars = ""
	}
	src := sources{bookworm: *bookworm, trixie: *trixie, goroot: *goroot, nodeModules: nm, jars: jars}
	cfg := config{cycles: *cycles, spans: *spans, poll: *poll, dbURL: *dbURL, only: *only}
	if err := run(ctx, src, cfg); err != nil {
		pprof.StopCPUProfile()
		benchdb.ExitOn("imagecost", err)
	}
}
