package java

import (
	"archive/zip"
	"context"
	"encoding/xml"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestRepoCoordinates(t *testing.T) {
	for _, tc := range []struct {
		path, want string // want "group artifact version", "" for none
	}{
		{"root/.m2/repository/org/apache/commons/commons-lang3/3.12.0/commons-lang3-3.12.0.jar", "org.apache.commons commons-lang3 3.12.0"},
		{"home/u/.m2/repository/commons-logging/commons-logging/1.2/commons-logging-1.2-sources.jar", "commons-logging commons-logging 1.2"},
		{"usr/share/maven-repo/com/google/guava/guava/31.1/guava-31.1.jar", "com.google.guava guava 31.1"},
		{"usr/share/maven-repo/commons-logging/commons-logging/debian/commons-logging-debian.jar", "commons-logging commons-logging debian"},
		{"usr/share/maven-repo/commons-logging/commons-logging/1.2/commons-logging-1.2.pom", "commons-logging commons-logging 1.2"},
		{".m2/repository/x/a/1/a-1.jar", "x a 1"},
		// Not in the layout: the file is not ARTIFACT-VERSION, no group
		// segment, another root.
		{"usr/share/maven-repo/g/a/1.0/other-1.0.jar", ""},
		{"usr/share/maven-repo/a/1.0/a-1.0.jar", ""},
		{"usr/share/java/commons-logging-1.2.jar", ""},
		{"opt/not.m2/repository/g/a/1/a-1.jar", ""},
		{"usr/share/maven-repo/g//a/1/a-1.jar", ""},
	} {
		g, a, v, ok := repoCoordinates(tc.path)
		got := ""
		if ok {
			got = g + " " + a + " " + v
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.path, got, tc.want)
		}
	}
	for p, want := range map[string]bool{
		"usr/share/maven-repo/commons-logging/commons-logging/1.2/commons-logging-1.2.pom":       true,
		"usr/share/maven-repo/commons-logging/commons-logging/debian/commons-logging-debian.pom": false,
		"usr/share/maven-repo/g/a/1.2/a-1.2-sources.pom":                                         false,
		"usr/share/maven-repo/g/a/1.2/a-1.2.jar":                                                 false,
		"opt/usr/share/maven-repo/g/a/1.2/a-1.2.pom":                                             false,
	} {
		if got := isDebianPOM(p); got != want {
			t.Errorf("isDebianPOM(%s) = %v", p, got)
		}
	}
}

// TestManifestGroup runs the manifest rule over real manifests: Syft's test
// data (whose Maven coordinates are known) and Debian's commons-logging,
// whose manifest says nothing of its group commons-logging (its vendor id is
// org.apache, its symbolic name org.apache.commons.logging): no group.
func TestManifestGroup(t *testing.T) {
	debianMF := readZipEntry(t, "testdata/debian/usr/share/java/commons-logging-1.2.jar", "META-INF/MANIFEST.MF")
	for _, tc := range []struct {
		name     string
		manifest []byte
		artifact string
		want     string
	}{
		{"jackson-core: symbolic name and vendor id", readTestdata(t, "syft/jackson-core-2.15.2.MANIFEST.MF"), "jackson-core", "com.fasterxml.jackson.core"},
		{"micronaut-aop: module name with _", readTestdata(t, "syft/micronaut-aop-4.9.11.MANIFEST.MF"), "micronaut-aop", "io.micronaut"},
		// org.opensaml.core is not GROUP.opensaml-core: no group (Maven
		// Central's is org.opensaml).
		{"opensaml-core: module name not the artifact's", readTestdata(t, "syft/opensaml-core-3.4.6.MANIFEST.MF"), "opensaml-core", ""},
		{"commons-logging as Debian ships it", debianMF, "commons-logging", ""},
		{"symbolic name is the group (guava)", []byte("Bundle-SymbolicName: com.google.guava\n"), "guava", ""},
		{"symbolic name ends with the artifact, vendor agrees", []byte("Bundle-SymbolicName: org.x.core\nImplementation-Vendor-Id: org.x\n"), "core", "org.x"},
		{"vendor id alone", []byte("Implementation-Vendor-Id: org.apache\n"), "commons-io", ""},
		{"Apache Commons' legacy groups", []byte("Bundle-SymbolicName: org.apache.commons.commons-io\nImplementation-Vendor-Id: org.apache\n"), "commons-io", ""},
		{"module name for another artifact", []byte("Automatic-Module-Name: org.x.other_thing\n"), "my-thing", ""},
		{"module name is the artifact alone", []byte("Automatic-Module-Name: my_thing\n"), "my-thing", ""},
	} {
		if got := manifestGroup(ParseManifest(tc.manifest), tc.artifact); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestDebianRepository reads the files of Debian's libcommons-logging-java
// (three jars without pom.properties, and the POMs of Debian's Maven
// repository) as one layer, and compares the coordinates reported with the
// oracle: the groupId, artifactId and version in each POM Debian ships.
// Recall and precision 1.0. The same jars elsewhere get no group (the file
// name alone never gives one), and in a ~/.m2 repository their path gives it.
func TestDebianRepository(t *testing.T) {
	var files []scanner.File
	var want []string
	root := "testdata/debian"
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "copyright" {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b := scannertest.ReadFile(t, p)
		files = append(files, scannertest.File(filepath.ToSlash(rel), b))
		if strings.HasSuffix(p, ".pom") {
			var pom struct {
				GroupID    string `xml:"groupId"`
				ArtifactID string `xml:"artifactId"`
				Version    string `xml:"version"`
			}
			if err := xml.Unmarshal(b, &pom); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			want = append(want, pom.GroupID+":"+pom.ArtifactID+" "+pom.Version+" pkg:maven/"+pom.GroupID+"/"+pom.ArtifactID+"@"+pom.Version)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 {
		t.Fatalf("POMs: %q", want)
	}
	sort.Strings(want)
	s := Scanner{}
	for _, f := range files {
		if !s.Match(f.Path()) {
			t.Errorf("Match(%s) = false", f.Path())
		}
	}
	res, err := s.Scan(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	got := view(res.Packages)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q (Debian's POMs)", got, want)
	}

	jar := scannertest.ReadFile(t, "testdata/debian/usr/share/java/commons-logging-1.2.jar")
	for p, want := range map[string]string{
		// The jar alone, without the POMs of its package: no group.
		"usr/share/java/commons-logging-1.2.jar":                                           "commons-logging 1.2 pkg:maven/commons-logging@1.2",
		"opt/app/lib/commons-logging-1.2.jar":                                              "commons-logging 1.2 pkg:maven/commons-logging@1.2",
		"root/.m2/repository/commons-logging/commons-logging/1.2/commons-logging-1.2.jar":  "commons-logging:commons-logging 1.2 pkg:maven/commons-logging/commons-logging@1.2",
		"usr/share/maven-repo/commons-logging/commons-logging/1.2/commons-logging-1.2.jar": "commons-logging:commons-logging 1.2 pkg:maven/commons-logging/commons-logging@1.2",
		// A repository path for another artifact gives no group.
		"root/.m2/repository/org/x/other/1.2/commons-logging-1.2.jar": "commons-logging 1.2 pkg:maven/commons-logging@1.2",
		// The version of the path is not the jar's.
		"root/.m2/repository/commons-logging/commons-logging/1.1/commons-logging-1.1.jar": "commons-logging 1.2 pkg:maven/commons-logging@1.2",
	} {
		res, err := s.Scan(context.Background(), []scanner.File{scannertest.File(p, jar)})
		if err != nil {
			t.Fatal(err)
		}
		if got := view(res.Packages); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
	// A jar of usr/share/java without a version in its name takes the
	// group of the only POM of its artifact (Debian's "guava.jar").
	res, err = s.Scan(context.Background(), []scanner.File{
		scannertest.File("usr/share/java/commons-logging.jar", jar),
		scannertest.File("usr/share/maven-repo/commons-logging/commons-logging/1.2/commons-logging-1.2.pom", nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := view(res.Packages), []string{"commons-logging:commons-logging 1.2 pkg:maven/commons-logging/commons-logging@1.2"}; !slices.Equal(got, want) {
		t.Errorf("unversioned jar: %q, want %q", got, want)
	}
}

func readTestdata(t testing.TB, p string) []byte {
	return scannertest.ReadFile(t, filepath.Join("testdata", p))
}

// readZipEntry returns the entry name of the zip file p.
func readZipEntry(t testing.TB, p, name string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
