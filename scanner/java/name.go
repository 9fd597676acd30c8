package java

import (
	"strings"
)

// archiveExts are the extensions of the Java archives the scanner reads: JAR,
// WAR, EAR, PAR, and Jenkins plugins (JPI, HPI), which are JARs.
var archiveExts = []string{".jar", ".war", ".ear", ".par", ".jpi", ".hpi"}

// isArchive reports whether a file or entry name ends in one of archiveExts
// (in any case) after a non-empty base name.
func isArchive(name string) bool {
	base := name[strings.LastIndexByte(name, '/')+1:]
	lower := strings.ToLower(base)
	for _, e := range archiveExts {
		if strings.HasSuffix(lower, e) && len(lower) > len(e) {
			return true
		}
	}
	return false
}

// splitFileName parses an archive's file name as Maven names artifacts,
// ARTIFACT-VERSION.jar: the version starts after the last "-" that is
// followed by a digit ("log4j-1.2-api-2.17.1.jar" is log4j-1.2-api 2.17.1,
// "guava-27.0-jre.jar" is guava 27.0-jre). Without such a "-", the name
// without its extension is the artifact and the version is "".
func splitFileName(name string) (artifact, version string) {
	base := name[strings.LastIndexByte(name, '/')+1:]
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	for i := len(base) - 2; i > 0; i-- {
		if base[i] == '-' && base[i+1] >= '0' && base[i+1] <= '9' {
			return base[:i], base[i+1:]
		}
	}
	return base, ""
}
