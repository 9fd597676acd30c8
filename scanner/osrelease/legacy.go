package osrelease

import (
	"regexp"
	"strings"

	"github.com/stevedore-dev/stevedore/report"
)

// Legacy release files, read when a layer has no os-release (older RHEL,
// CentOS, Oracle Linux, Amazon Linux, Alpine and Ubuntu images). The order is
// the preference: distributions derived from RHEL ship a redhat-release too,
// so their own file comes first.
const (
	oracleRelease    = "etc/oracle-release"
	centosRelease    = "etc/centos-release"
	almaRelease      = "etc/almalinux-release"
	rockyRelease     = "etc/rocky-release"
	fedoraRelease    = "etc/fedora-release"
	redhatRelease    = "etc/redhat-release"
	systemRelease    = "etc/system-release"
	alpineRelease    = "etc/alpine-release"
	lsbRelease       = "etc/lsb-release"
	systemReleaseCPE = "etc/system-release-cpe"
)

// legacyPaths lists the legacy release files in order of preference.
func legacyPaths() []string {
	return []string{oracleRelease, centosRelease, almaRelease, rockyRelease, fedoraRelease, redhatRelease, systemRelease, alpineRelease, lsbRelease}
}

// isLegacy reports whether path is one of the legacy files the scanner reads.
func isLegacy(path string) bool {
	if path == systemReleaseCPE {
		return true
	}
	for _, p := range legacyPaths() {
		if p == path {
			return true
		}
	}
	return false
}

// releaseLine is the "<name> release <version> (<codename>)" line of the
// RHEL family's release files.
var releaseLine = regexp.MustCompile(`^\s*(.+?)\s+release\s+([0-9][0-9A-Za-z.]*)\s*(?:\((.+?)\))?\s*$`)

// releaseIDs maps the start of a release line's name, lower case, to an
// os-release ID; the first match wins.
var releaseIDs = []struct{ prefix, id string }{
	{"red hat", "rhel"}, // Red Hat Enterprise Linux, and the old Red Hat Linux.
	{"centos", "centos"},
	{"almalinux", "almalinux"},
	{"rocky linux", "rocky"},
	{"oracle linux", "ol"},
	{"fedora", "fedora"},
	{"amazon linux", "amzn"},
	{"scientific linux", "scientific"},
}

// releaseID is the os-release ID of a release line's name, "" for a name
// releaseIDs does not know.
func releaseID(name string) string {
	n := strings.ToLower(name)
	for _, r := range releaseIDs {
		if strings.HasPrefix(n, r.prefix) {
			return r.id
		}
	}
	return ""
}

// FromReleaseLine reads a RHEL-family release file ("CentOS release 5.7
// (Final)"); nil when the line is not of that form or names a distribution
// it does not know.
func FromReleaseLine(data []byte) *report.Distribution {
	line, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	m := releaseLine.FindStringSubmatch(line)
	if m == nil {
		return nil
	}
	id := releaseID(m[1])
	if id == "" {
		return nil
	}
	d := &report.Distribution{DID: id, Name: m[1], VersionID: m[2], Version: m[2], PrettyName: strings.TrimSpace(line)}
	if m[3] != "" {
		d.Version = m[2] + " (" + m[3] + ")"
		d.VersionCodeName = strings.ToLower(m[3])
	}
	return d
}

var alpineVersion = regexp.MustCompile(`^([0-9]+)\.([0-9]+)(\.[0-9A-Za-z_.-]+)?$`)

// FromAlpineRelease reads etc/alpine-release ("3.10.4"); nil otherwise.
func FromAlpineRelease(data []byte) *report.Distribution {
	v := strings.TrimSpace(string(data))
	m := alpineVersion.FindStringSubmatch(v)
	if m == nil {
		return nil
	}
	return &report.Distribution{DID: "alpine", Name: "Alpine Linux", Version: v, VersionID: v,
		PrettyName: "Alpine Linux v" + m[1] + "." + m[2]}
}

// FromLSBRelease reads the keys of etc/lsb-release (DISTRIB_ID,
// DISTRIB_RELEASE, DISTRIB_CODENAME, DISTRIB_DESCRIPTION); nil without an
// id or release.
func FromLSBRelease(kv map[string]string) *report.Distribution {
	id, rel := kv["DISTRIB_ID"], kv["DISTRIB_RELEASE"]
	if id == "" || rel == "" {
		return nil
	}
	d := &report.Distribution{DID: strings.ToLower(id), Name: id, VersionID: rel, Version: rel,
		VersionCodeName: kv["DISTRIB_CODENAME"], PrettyName: kv["DISTRIB_DESCRIPTION"]}
	if d.PrettyName == "" {
		d.PrettyName = id + " " + rel
	}
	return d
}
