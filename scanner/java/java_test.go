package java

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/zipdir"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "java", Version: "2", Kind: scanner.KindPackage}, map[string]bool{
		"usr/share/java/commons-io.jar":             true,
		"usr/local/tomcat/webapps/ROOT.war":         true,
		"opt/app/app.EAR":                           true,
		"var/jenkins_home/plugins/git.jpi":          true,
		"var/jenkins_home/plugins/git.hpi":          true,
		"opt/x.par":                                 true,
		"app.jar":                                   true,
		"usr/share/java/.jar":                       false,
		"usr/share/java/x.jar.sha1":                 false,
		"usr/share/java/x.zip":                      false,
		"usr/share/java/jar":                        false,
		"usr/lib/jvm/java-17/lib/modules":           false,
		"usr/lib/jvm/java-17/jmods/java.base.jmod":  false,
		"usr/share/maven-repo/x/1.0/x-1.0.pom":      false,
		"usr/lib/python3/dist-packages/x/y.jarfile": false,
	})
}

// javaFixtures are the corpus's archives (aquasecurity/trivy, anchore/syft,
// quay/claircore, google/osv-scalibr test data), placed at paths with the
// file names they have upstream, and the packages expected: the
// pom.properties listed in testdata/fixtures/SOURCES.md (read with unzip),
// and for the stub jars of claircore's inner.jar, the file names.
var javaFixtures = []struct {
	fixture, path string
	want          []string // "name version purl"
}{
	{"java/trivy_jackson-annotations-2.15.0-rc2.jar", "app/lib/jackson-annotations-2.15.0-rc2.jar", []string{
		"com.fasterxml.jackson.core:jackson-annotations 2.15.0-rc2 pkg:maven/com.fasterxml.jackson.core/jackson-annotations@2.15.0-rc2",
	}},
	{"java/trivy_hadoop-shaded-guava-1.1.0-SNAPSHOT.jar", "opt/hadoop/share/hadoop-shaded-guava-1.1.0-SNAPSHOT.jar", []string{
		"org.apache.hadoop.thirdparty:hadoop-shaded-guava 1.1.0-SNAPSHOT pkg:maven/org.apache.hadoop.thirdparty/hadoop-shaded-guava@1.1.0-SNAPSHOT",
		"com.google.j2objc:j2objc-annotations 1.3 pkg:maven/com.google.j2objc/j2objc-annotations@1.3",
		"com.google.guava:guava 29.0-jre pkg:maven/com.google.guava/guava@29.0-jre",
		"com.google.guava:failureaccess 1.0.1 pkg:maven/com.google.guava/failureaccess@1.0.1",
		"com.google.guava:listenablefuture 9999.0-empty-to-avoid-conflict-with-guava pkg:maven/com.google.guava/listenablefuture@9999.0-empty-to-avoid-conflict-with-guava",
	}},
	{"java/trivy_gradle.war", "usr/local/tomcat/webapps/gradle.war", []string{
		"commons-dbcp:commons-dbcp 1.4 pkg:maven/commons-dbcp/commons-dbcp@1.4",
		"commons-pool:commons-pool 1.6 pkg:maven/commons-pool/commons-pool@1.6",
		"log4j:log4j 1.2.17 pkg:maven/log4j/log4j@1.2.17",
		"org.apache.commons:commons-compress 1.19 pkg:maven/org.apache.commons/commons-compress@1.19",
	}},
	{"java/trivy_nested.jar", "app/nested.jar", []string{
		"test:nested 0.0.1 pkg:maven/test/nested@0.0.1",
		"test:nested2 0.0.2 pkg:maven/test/nested2@0.0.2",
		"test:nested3 0.0.3 pkg:maven/test/nested3@0.0.3",
	}},
	{"java/syft_example-java-app-maven-0.1.0.jar", "app/example-java-app-maven-0.1.0.jar", []string{
		"org.anchore:example-java-app-maven 0.1.0 pkg:maven/org.anchore/example-java-app-maven@0.1.0",
		"joda-time:joda-time 2.9.2 pkg:maven/joda-time/joda-time@2.9.2",
	}},
	{"java/claircore_inner.jar", "app/inner.jar", []string{
		// Stub jars whose manifests say nothing: the file names.
		"jackson-annotations 2.13.0 pkg:maven/jackson-annotations@2.13.0",
		"log4j-api 2.14 pkg:maven/log4j-api@2.14",
		"log4j 2.14.0 pkg:maven/log4j@2.14.0",
		// META-INF/inner-jar/something-invalid.jar has no version.
	}},
	{"java/scalibr_complex.jar", "app/complex.jar", []string{
		"com.some.package:package-name 1.2.3 pkg:maven/com.some.package/package-name@1.2.3",
		"com.some.anotherpackage:another-package-name 3.2.1 pkg:maven/com.some.anotherpackage/another-package-name@3.2.1",
	}},
}

func view(pkgs []*report.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+" "+p.Version+" "+p.PURL)
	}
	return out
}

func TestFixtures(t *testing.T) {
	for _, tc := range javaFixtures {
		t.Run(tc.fixture, func(t *testing.T) {
			tmp := t.TempDir()
			res, err := Scanner{TempDir: tmp}.Scan(context.Background(), []scanner.File{scannertest.FromDisk(t, tc.path, fixtures.Path(t, tc.fixture))})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) != 0 {
				t.Errorf("warnings %q", res.Warnings)
			}
			if got := view(res.Packages); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			for _, p := range res.Packages {
				if p.Kind != report.KindBinary || p.Filepath != tc.path || p.PackageDB != tc.path {
					t.Errorf("package %+v", p)
				}
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}

// TestThroughLayerReader reads the archives from a layer: the layer
// reader's files give random access (in memory or spooled), so no copy is
// made (the scanner's TempDir does not exist: a copy would fail).
func TestThroughLayerReader(t *testing.T) {
	var files []scannertest.LayerFile
	for _, tc := range javaFixtures {
		files = append(files, scannertest.LayerFile{Path: tc.path, Mode: 0o644, Body: scannertest.ReadFixture(t, tc.fixture)})
	}
	blob := scannertest.Tar(t, files...)
	s := Scanner{TempDir: "/nonexistent/stevedore-test"}
	for name, opts := range map[string]layer.Options{"in memory": {}, "spooled": {MaxInMemory: 4096, TempDir: t.TempDir()}} {
		t.Run(name, func(t *testing.T) {
			res, _ := scannertest.ScanBlob(t, s, blob, opts)
			if len(res.Warnings) != 0 {
				t.Errorf("warnings %q", res.Warnings)
			}
			for _, tc := range javaFixtures {
				var got []*report.Package
				for _, p := range res.Packages {
					if p.Filepath == tc.path {
						got = append(got, p)
					}
				}
				if !slices.Equal(view(got), tc.want) {
					t.Errorf("%s: got %q", tc.path, view(got))
				}
			}
		})
	}
}

// TestManifestAndProperties reads the pom.properties and MANIFEST.MF that
// quay/claircore extracted from real jars (java/jar/testdata), and the
// identity the manifest gives a jar without pom.properties.
func TestManifestAndProperties(t *testing.T) {
	for _, tc := range []struct {
		jar                      string
		group, artifact, version string // pom.properties
		mName, mVersion, mPURL   string // from the manifest and file name
	}{
		{"commons-codec-1.9.jar", "commons-codec", "commons-codec", "1.9",
			"commons-codec", "1.9", "pkg:maven/commons-codec@1.9"},
		{"guava-27.0-jre.jar", "com.google.guava", "guava", "27.0-jre",
			"guava", "27.0-jre", "pkg:maven/guava@27.0-jre"},
		{"jackson-databind-2.9.10.8.jar", "com.fasterxml.jackson.core", "jackson-databind", "2.9.10.8",
			"com.fasterxml.jackson.core:jackson-databind", "2.9.10.8", "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.10.8"},
		{"logback-classic-1.2.3.jar", "ch.qos.logback", "logback-classic", "1.2.3",
			"logback-classic", "1.2.3", "pkg:maven/logback-classic@1.2.3"},
	} {
		t.Run(tc.jar, func(t *testing.T) {
			stem := strings.TrimSuffix(tc.jar, ".jar")
			props := scannertest.ReadFixture(t, "java/claircore_properties_"+stem+".pom.properties")
			p, err := pomOf(ParseProperties(props))
			if err != nil || p != (pom{tc.group, tc.artifact, tc.version}) {
				t.Errorf("pom.properties: %+v, %v", p, err)
			}
			mf := scannertest.ReadFixture(t, "java/claircore_manifest_"+stem+".MF")
			// A jar holding only the manifest.
			jar := buildZip(t, zip.Deflate, map[string][]byte{"META-INF/MANIFEST.MF": mf})
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("usr/share/java/"+tc.jar, jar)})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := view(res.Packages), []string{tc.mName + " " + tc.mVersion + " " + tc.mPURL}; !slices.Equal(got, want) {
				t.Errorf("manifest: got %q, want %q", got, want)
			}
		})
	}
}

func TestOwnIdentity(t *testing.T) {
	mf := func(s string) map[string]string { return ParseManifest([]byte(s)) }
	for _, tc := range []struct {
		name     string
		base     string
		poms     []pom
		manifest map[string]string
		want     string // "" for none
	}{
		{"own pom present", "a-1.0.jar", []pom{{"g", "a", "1.0"}}, nil, ""},
		{"only shaded poms", "a-1.0.jar", []pom{{"g", "b", "2.0"}}, nil, "a 1.0"},
		{"poms, no version in the file name", "app.jar", []pom{{"g", "b", "2.0"}}, mf("Implementation-Version: 3\n"), ""},
		{"file name only", "spring-core-5.3.20.jar", nil, nil, "spring-core 5.3.20"},
		{"manifest version wins", "x-1.0.jar", nil, mf("Implementation-Version: 1.0.1\n"), "x 1.0.1"},
		{"title when the file has no version", "app.jar", nil, mf("Implementation-Title: my-service\nImplementation-Version: 2.1\n"), "my-service 2.1"},
		{"title with blanks ignored", "app.jar", nil, mf("Implementation-Title: My Service\nImplementation-Version: 2.1\n"), "app 2.1"},
		{"symbolic name", "", nil, mf("Bundle-SymbolicName: org.x.y;singleton:=true\nBundle-Version: 1.2.3.v2020\n"), "org.x.y 1.2.3.v2020"},
		{"group from symbolic name and vendor", "jackson-core-2.9.jar", nil, mf("Bundle-SymbolicName: com.fasterxml.jackson.core.jackson-core\nImplementation-Vendor-Id: com.fasterxml.jackson\n"), "com.fasterxml.jackson.core:jackson-core 2.9"},
		{"symbolic name is the group", "guava-27.0-jre.jar", nil, mf("Bundle-SymbolicName: com.google.guava\nBundle-Version: 27.0.0.jre\n"), "guava 27.0-jre"},
		{"no version anywhere", "tool.jar", nil, mf("Main-Class: x.Y\n"), ""},
		{"invalid UTF-8 version ignored", "x-1.0.jar", nil, mf("Implementation-Version: 2\xff\n"), "x 1.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := ownIdentity(tc.base, tc.poms, tc.manifest, nil)
			got := ""
			if ok {
				got = p.artifact + " " + p.version
				if p.group != "" {
					got = p.group + ":" + got
				}
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSplitFileName(t *testing.T) {
	for in, want := range map[string][2]string{
		"jackson-annotations-2.15.0-rc2.jar": {"jackson-annotations", "2.15.0-rc2"},
		"guava-27.0-jre.jar":                 {"guava", "27.0-jre"},
		"log4j-1.2-api-2.17.1.jar":           {"log4j-1.2-api", "2.17.1"},
		"netty-all-4.1.58.Final.jar":         {"netty-all", "4.1.58.Final"},
		"kotlin-stdlib-jdk8-1.6.0.jar":       {"kotlin-stdlib-jdk8", "1.6.0"},
		"something-invalid.jar":              {"something-invalid", ""},
		"app.war":                            {"app", ""},
		"WEB-INF/lib/x-1.jar":                {"x", "1"},
		"-1.jar":                             {"-1", ""},
		"noext":                              {"noext", ""},
	} {
		a, v := splitFileName(in)
		if [2]string{a, v} != want {
			t.Errorf("splitFileName(%q) = %q, %q; want %q", in, a, v, want)
		}
	}
}

func TestParseProperties(t *testing.T) {
	got := ParseProperties([]byte("# comment\n! also\n  groupId = a.b\r\nartifactId:x\\\n   -y\nversion 1.0\\u0041\nkey\\ with\\=sep=v\\tw\nempty\nversion=second\nlatin=caf\xe9\n"))
	want := map[string]string{"groupId": "a.b", "artifactId": "x-y", "version": "1.0A", "key with=sep": "v\tw", "empty": "", "latin": "café"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestParseManifest(t *testing.T) {
	got := ParseManifest([]byte("Manifest-Version: 1.0\r\nImplementation-Title: long-na\r\n me\r\nBundle-Version:1.0\r\nnot an attribute\r\nIMPLEMENTATION-TITLE: second\r\n\r\nName: section\r\nImplementation-Version: 9\r\n"))
	want := map[string]string{"manifest-version": "1.0", "implementation-title": "long-name", "bundle-version": "1.0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// buildZip builds a zip archive, entries in name order, with method.
func buildZip(t testing.TB, method uint16, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pomProps(g, a, v string) []byte {
	return []byte(fmt.Sprintf("groupId=%s\nartifactId=%s\nversion=%s\n", g, a, v))
}

// overlapped rewrites a zip with a single entry so that its central
// directory lists that entry n times under different names: n entries that
// all point at the same data (a "non-recursive" zip bomb's trick).
func overlapped(t testing.TB, z []byte, n int) []byte {
	t.Helper()
	le := binary.LittleEndian
	end := bytes.LastIndex(z, []byte("PK\x05\x06"))
	dirSize := int(le.Uint32(z[end+12:]))
	dirOff := int(le.Uint32(z[end+16:]))
	rec := z[dirOff : dirOff+dirSize]
	nameLen := int(le.Uint16(rec[28:]))
	var dir []byte
	for i := 0; i < n; i++ {
		r := bytes.Clone(rec)
		// Rename: keep the length, vary the first four bytes.
		copy(r[zipdir.RecordLen:zipdir.RecordLen+min(nameLen, 4)], fmt.Sprintf("%04d", i))
		dir = append(dir, r...)
	}
	out := append(bytes.Clone(z[:dirOff]), dir...)
	e := bytes.Clone(z[end : end+zipdir.EndLen])
	le.PutUint16(e[8:], uint16(n))
	le.PutUint16(e[10:], uint16(n))
	le.PutUint32(e[12:], uint32(len(dir)))
	return append(out, e...)
}

// rawEntry is an entry written as given: its compressed bytes and the
// sizes its headers declare, true or not.
type rawEntry struct {
	name     string
	raw      []byte // deflated
	declared uint64 // uncompressed size in the headers
}

// deflated compresses n zero bytes.
func deflated(t testing.TB, n int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	chunk := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(chunk)) {
		fw.Write(chunk[:min(left, int64(len(chunk)))])
	}
	fw.Close()
	return buf.Bytes()
}

// zipRaw builds an archive of normal files and raw entries.
func zipRaw(t testing.TB, files map[string][]byte, raws ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, b := range files {
		w, _ := zw.Create(n)
		w.Write(b)
	}
	for _, r := range raws {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: r.name, Method: zip.Deflate, CompressedSize64: uint64(len(r.raw)), UncompressedSize64: r.declared})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(r.raw)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// peakHeap runs f and returns the largest live heap seen while it ran.
func peakHeap(f func()) uint64 {
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var p uint64
		for {
			runtime.ReadMemStats(&m)
			p = max(p, m.HeapAlloc)
			select {
			case <-done:
				peak <- p
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	f()
	close(done)
	return <-peak
}

// TestBombs: archives built to exhaust memory, disk or time are cut short
// by the limits, with a warning; what was found before is kept; the live
// heap stays far below what the bombs claim.
func TestBombs(t *testing.T) {
	b := makeBombs(t)
	for _, tc := range []bombCase{
		{"nested jar over the total budget", Scanner{MaxTotalBytes: 100 << 20}, b.nestedZeros, []string{"o:outer"}, "limit reached"},
		{"nested jar inflated to disk, not a zip", Scanner{MaxInMemory: 1 << 20}, b.nestedZeros, []string{"o:outer"}, "zeros-1.jar: not a readable zip archive"},
		{"nested jar inflated in memory, not a zip", Scanner{}, b.smallZeros, []string{"o:outer"}, "zeros-8.jar: not a readable zip archive"},
		{"nested jar declaring 8 GiB", Scanner{}, b.declaresHuge, []string{"o:outer"}, "8589934592 bytes to inflate"},
		{"nested jar lying about its size", Scanner{}, b.liar, []string{"o:outer"}, "liar-1.jar: not a readable zip archive"},
		{"huge pom.properties", Scanner{}, b.bigPom, []string{"x:z"}, "more than the limit of 1048576"},
		{"nested too deep", Scanner{}, b.deep, []string{"d:d0", "d:d1", "d:d2", "d:d3", "d:d4"}, "nested more than 4 archives deep"},
		{"fan-out", Scanner{}, b.fan, []string{"f:leaf"}, "more than 10000 archives"},
		{"too many entries", Scanner{MaxEntries: 100}, b.manyEntries, nil, "central directory over the limit"},
		{"directory too large", Scanner{MaxDirectoryBytes: 4096}, b.manyEntries, nil, "central directory over the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkBomb(t, tc) })
	}
}

// bombs are the archives of TestBombs.
type bombs struct {
	nestedZeros, smallZeros, declaresHuge, liar, bigPom, deep, fan, manyEntries []byte
}

// makeBombs builds the archives of TestBombs.
func makeBombs(t *testing.T) bombs {
	outerPom := map[string][]byte{"META-INF/maven/o/outer/pom.properties": pomProps("o", "outer", "1")}
	// A nested "jar" that inflates to 256 MiB of zeros (256 KiB
	// compressed).
	zeros256 := deflated(t, 256<<20)
	nestedZeros := zipRaw(t, outerPom, rawEntry{name: "WEB-INF/lib/zeros-1.jar", raw: zeros256, declared: 256 << 20})
	smallZeros := zipRaw(t, outerPom, rawEntry{name: "WEB-INF/lib/zeros-8.jar", raw: deflated(t, 8<<20), declared: 8 << 20})
	// The same bytes declaring 8 GiB: refused before inflating.
	declaresHuge := zipRaw(t, outerPom, rawEntry{name: "WEB-INF/lib/huge-1.jar", raw: zeros256, declared: 8 << 30})
	// Declaring 1 MiB while the data inflates to 256 MiB: only the
	// declared size is read.
	liar := zipRaw(t, outerPom, rawEntry{name: "WEB-INF/lib/liar-1.jar", raw: zeros256, declared: 1 << 20})
	// A pom.properties declaring 64 MiB, next to a good one.
	bigPom := zipRaw(t, map[string][]byte{"META-INF/maven/x/z/pom.properties": pomProps("x", "z", "1")},
		rawEntry{name: "META-INF/maven/x/y/pom.properties", raw: deflated(t, 64<<20), declared: 64 << 20})
	// A jar nested 10 deep.
	deep := buildZip(t, zip.Deflate, map[string][]byte{"META-INF/maven/d/d10/pom.properties": pomProps("d", "d10", "1")})
	for i := 9; i >= 0; i-- {
		deep = buildZip(t, zip.Deflate, map[string][]byte{
			fmt.Sprintf("META-INF/maven/d/d%d/pom.properties", i): pomProps("d", fmt.Sprintf("d%d", i), "1"),
			"lib/next.jar": deep,
		})
	}
	// Fan-out: 1000 entries pointing at the same stored jar, which has
	// 1000 entries pointing at the same stored jar, three levels: a
	// billion archives if nothing stopped it.
	fan := buildZip(t, zip.Store, map[string][]byte{"META-INF/maven/f/leaf/pom.properties": pomProps("f", "leaf", "1")})
	for i := 0; i < 3; i++ {
		fan = overlapped(t, buildZip(t, zip.Store, map[string][]byte{"lib/a.jar": fan}), 1000)
	}
	// Many entries.
	many := map[string][]byte{}
	for i := 0; i < 300; i++ {
		many[fmt.Sprintf("f%d.class", i)] = nil
	}
	manyEntries := buildZip(t, zip.Store, many)

	return bombs{nestedZeros, smallZeros, declaresHuge, liar, bigPom, deep, fan, manyEntries}
}

// bombCase is a case of TestBombs: the scanner and its limits, the
// archive, the packages expected and a part of the warning.
type bombCase struct {
	name    string
	s       Scanner
	jar     []byte
	want    []string // package names
	warning string
}

// checkBomb scans tc's archive as app/bomb.jar and checks what is found,
// the warning, the live heap, the time taken and the temporary files.
func checkBomb(t *testing.T, tc bombCase) {
	tmp := t.TempDir()
	tc.s.TempDir = tmp
	var res *scanner.Result
	var err error
	start := time.Now()
	peak := peakHeap(func() {
		res, err = tc.s.Scan(context.Background(), []scanner.File{scannertest.File("app/bomb.jar", tc.jar)})
	})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range res.Packages {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, tc.want) {
		t.Errorf("packages %q, want %q", names, tc.want)
	}
	if len(res.Warnings) == 0 || !strings.Contains(strings.Join(res.Warnings, "\n"), tc.warning) || !strings.Contains(res.Warnings[0], "app/bomb.jar") {
		t.Errorf("warnings %q, want one naming the file and %q", res.Warnings, tc.warning)
	}
	if peak > 128<<20 {
		t.Errorf("live heap reached %d MiB", peak>>20)
	}
	if took > 30*time.Second {
		t.Errorf("took %v", took)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// Broken archives: skipped with a warning, the other files still read.
func TestBadInput(t *testing.T) {
	good := scannertest.ReadFixture(t, "java/trivy_jackson-annotations-2.15.0-rc2.jar")
	war := scannertest.ReadFixture(t, "java/trivy_gradle.war")
	// The WAR with one nested jar's bytes damaged in the middle.
	damagedNested := bytes.Clone(war)
	if i := bytes.Index(damagedNested, []byte("WEB-INF/lib/log4j-1.2.17.jar")); i > 0 {
		for k := i + 200; k < i+20000; k++ {
			damagedNested[k] ^= 0x5a
		}
	}
	for _, tc := range []struct {
		name    string
		data    []byte
		want    int // packages from the bad file
		warning string
	}{
		{"truncated", good[:len(good)/2], 0, "not a readable zip archive"},
		{"empty", nil, 0, "not a readable zip archive"},
		{"not a zip", []byte("#!/bin/sh\necho hi\n"), 0, "not a readable zip archive"},
		{"nested jar damaged", damagedNested, 3, "log4j-1.2.17.jar"},
		{"control character in the pom version", buildZip(t, zip.Deflate, map[string][]byte{"META-INF/maven/a/b/pom.properties": []byte("groupId=a\nartifactId=b\nversion=1\\u0000\n")}), 0, "version"},
		{"pom without a groupId", buildZip(t, zip.Deflate, map[string][]byte{"META-INF/maven/a/b/pom.properties": []byte("artifactId=b\nversion=1\n")}), 0, "groupId: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Scanner{TempDir: t.TempDir()}.Scan(context.Background(), []scanner.File{
				scannertest.File("app/bad.jar", tc.data),
				scannertest.File("app/jackson-annotations-2.15.0-rc2.jar", good),
			})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, p := range res.Packages {
				if p.Filepath == "app/bad.jar" {
					n++
				}
			}
			if n != tc.want || len(res.Packages) != tc.want+1 {
				t.Errorf("%d packages from the bad file (want %d), %d in all: %q", n, tc.want, len(res.Packages), view(res.Packages))
			}
			if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "app/bad.jar") || !strings.Contains(strings.Join(res.Warnings, "\n"), tc.warning) {
				t.Errorf("warnings %q, want one naming the file and %q", res.Warnings, tc.warning)
			}
		})
	}
	// A file that cannot be opened is an error; so is a canceled context.
	broken := scannertest.FileFunc("app/x.jar", 10, func() (io.ReadCloser, error) { return nil, os.ErrPermission })
	if _, err := (Scanner{}).Scan(context.Background(), []scanner.File{broken}); err == nil || !strings.Contains(err.Error(), "app/x.jar") {
		t.Errorf("open error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Scanner{}).Scan(ctx, []scanner.File{scannertest.File("app/y.jar", good)}); err == nil {
		t.Error("canceled: no error")
	}
}
