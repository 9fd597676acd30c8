package java

import (
	"path"
	"strings"

	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
)

// A group for an archive without a pom.properties of its own comes from what
// the archive and its place say, never from its file name alone. In order of
// precedence (the first that gives one wins):
//
//  1. the Maven repository layout the archive sits in:
//     ".../.m2/repository/GROUP/PATH/ARTIFACT/VERSION/ARTIFACT-VERSION*.jar"
//     or Debian's "usr/share/maven-repo/GROUP/PATH/ARTIFACT/VERSION/..."
//     (VERSION may be Debian's "debian"), when ARTIFACT is the archive's
//     artifact and VERSION its version;
//  2. for an archive directly in Debian's "usr/share/java", the
//     "usr/share/maven-repo/GROUP/PATH/ARTIFACT/VERSION/ARTIFACT-VERSION.pom"
//     of the same layer (the Debian package that ships the jar ships it)
//     with the archive's artifact and version, or, for a jar whose file
//     name has no version (Debian's "guava.jar"), the one such pom of that
//     artifact;
//  3. the manifest: a Bundle-SymbolicName or Automatic-Module-Name
//     GROUP.ARTIFACT (the module name with the artifact's "-" written "_")
//     where GROUP is (or is under) the Implementation-Vendor-Id, or, for an
//     artifact with a "-" (a suffix no group segment has), either name
//     alone; the Implementation-Vendor-Id alone never (commons-logging's is
//     "org.apache"), nor a symbolic name that merely ends with the
//     artifact's name (guava's is "com.google.guava"), nor the group
//     "org.apache.commons" (commons-io's symbolic name is
//     org.apache.commons.commons-io, its group commons-io).
//
// Nested archives use only the manifest.

// repoRoots are the directories under which a Maven repository layout
// starts.
var repoRoots = []string{".m2/repository/", "usr/share/maven-repo/"}

// repoCoordinates splits a path in a Maven repository layout (see above) into
// group, artifact and version directory. It reports false for any other path
// and when the file name does not start with ARTIFACT-VERSION (or, for
// Debian's "debian" directory, ARTIFACT-debian).
func repoCoordinates(p string) (group, artifact, version string, ok bool) {
	var rest string
	for _, root := range repoRoots {
		if i := strings.Index("/"+p, "/"+root); i >= 0 {
			rest = p[i+len(root):]
			break
		}
	}
	if rest == "" {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 4 {
		return "", "", "", false // at least one group segment
	}
	n := len(parts)
	artifact, version = parts[n-3], parts[n-2]
	if !strings.HasPrefix(parts[n-1], artifact+"-"+version) {
		return "", "", "", false
	}
	for _, s := range parts[:n-3] {
		if s == "" || s == "." || s == ".." {
			return "", "", "", false
		}
	}
	group = strings.Join(parts[:n-3], ".")
	for _, s := range []string{group, artifact, version} {
		if v, err := langpkg.Value(s); err != nil || v != s {
			return "", "", "", false
		}
	}
	return group, artifact, version, true
}

// isDebianPOM reports whether p is a POM in Debian's Maven repository
// ("usr/share/maven-repo/G/A/V/A-V.pom", V not "debian"): the scanner reads
// its path, not its content.
func isDebianPOM(p string) bool {
	if !strings.HasPrefix(p, "usr/share/maven-repo/") || !strings.HasSuffix(p, ".pom") {
		return false
	}
	_, a, v, ok := repoCoordinates(p)
	return ok && v != "debian" && path.Base(p) == a+"-"+v+".pom"
}

// debianRepo is the Debian Maven repository of a layer, from its POMs'
// paths: artifact, then version, to group.
type debianRepo map[string]map[string]string

func (d debianRepo) add(p string) {
	g, a, v, _ := repoCoordinates(p)
	if d[a] == nil {
		d[a] = map[string]string{}
	}
	d[a][v] = g
}

// pathGroup returns the group that the layer file's path (rules 1 and 2
// above) gives to artifact at version, "" when none does.
func (d debianRepo) pathGroup(file, artifact, version string, fileVersioned bool) string {
	if g, a, v, ok := repoCoordinates(file); ok && a == artifact && (v == version || v == "debian") {
		return g
	}
	if path.Dir(file) != "usr/share/java" {
		return ""
	}
	vs := d[artifact]
	if g, ok := vs[version]; ok {
		return g
	}
	if !fileVersioned && len(vs) == 1 {
		for _, g := range vs {
			return g
		}
	}
	return ""
}

// manifestGroup returns the group the manifest gives artifact (rule 3
// above), "" when it gives none.
func manifestGroup(manifest map[string]string, artifact string) string {
	attr := func(k string) string {
		v, err := langpkg.Value(manifest[k])
		if err != nil {
			return ""
		}
		return v
	}
	vendor := attr("implementation-vendor-id")
	bsn, _, _ := strings.Cut(manifest["bundle-symbolicname"], ";")
	bsn, _ = langpkg.Value(strings.TrimSpace(bsn))
	amn := attr("automatic-module-name")
	distinctive := strings.Contains(artifact, "-")
	for _, c := range []struct{ name, suffix string }{
		{bsn, "." + artifact},
		{amn, "." + artifact},
		{amn, "." + strings.ReplaceAll(artifact, "-", "_")},
	} {
		g, ok := strings.CutSuffix(c.name, c.suffix)
		if !ok || g == "" || strings.HasSuffix(g, ".") || g == "org.apache.commons" {
			// Apache Commons' older components kept groups named
			// after themselves (commons-io:commons-io) while their
			// symbolic names say org.apache.commons.commons-io.
			continue
		}
		if distinctive || (vendor != "" && (g == vendor || strings.HasPrefix(g, vendor+"."))) {
			return g
		}
	}
	return ""
}
