package java

import (
	"strings"
)

// ParseManifest reads the main section of a JAR manifest (META-INF/
// MANIFEST.MF): "Name: value" lines up to the first empty line, a line
// starting with one space continuing the previous value. Attribute names are
// case-insensitive: the map's keys are lowercase. The first value of a
// repeated attribute wins. Lines that are not attributes are ignored. It
// never fails.
func ParseManifest(data []byte) map[string]string {
	out := map[string]string{}
	var key string
	var val strings.Builder
	flush := func() {
		if key != "" {
			if _, dup := out[key]; !dup {
				out[key] = val.String()
			}
		}
		key = ""
		val.Reset()
	}
	for _, line := range splitLines(string(data)) {
		if line == "" {
			break // the end of the main section
		}
		if line[0] == ' ' {
			if key != "" {
				val.WriteString(line[1:])
			}
			continue
		}
		flush()
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		key = strings.ToLower(k)
		val.WriteString(strings.TrimPrefix(v, " "))
	}
	flush()
	return out
}
