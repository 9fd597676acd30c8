// Package osrelease detects a layer's distribution from its os-release file
// (os-release(5)) or, failing that, from a numeric etc/debian_version or,
// for distroless Debian images, from the base-files entry of
// var/lib/dpkg/status.d/.
package osrelease

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// MaxFileSize is the largest os-release or debian_version file Scan reads.
const MaxFileSize = 1 << 20

// The paths the scanner matches, in order of preference: os-release(5) says
// etc/os-release takes precedence over usr/lib/os-release, and
// etc/debian_version is only a fallback for Debian layers without either.
const (
	etcOSRelease  = "etc/os-release"
	usrOSRelease  = "usr/lib/os-release"
	debianVersion = "etc/debian_version"
	statusDir     = "var/lib/dpkg/status.d/"
)

// Scanner reports the distribution described by a layer's os-release file.
//
// When a layer has both etc/os-release and usr/lib/os-release, etc/os-release
// wins; a file with no assignments at all is passed over in favour of the
// next one. When neither yields a distribution, the legacy release files are
// read (etc/oracle-release, centos-release, almalinux-release, rocky-release,
// fedora-release, redhat-release, system-release, alpine-release, lsb-release,
// in that order; etc/system-release-cpe gives the CPE). Then a numeric etc/debian_version
// ("12.5") yields Debian with that major version. A debian_version that is not
// numeric ("bookworm/sid") is ignored: Debian testing/unstable and Ubuntu both
// write that form, so it does not name a distribution.
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "os-release", version "3", a distribution
// scanner. Version 2 added distroless Debian (status.d), version 3 the legacy
// release files.
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "os-release", Version: "3", Kind: scanner.KindDistribution}
}

// Match reports whether path is etc/os-release, usr/lib/os-release,
// etc/debian_version, or a file directly in var/lib/dpkg/status.d/ other
// than a *.md5sums file.
func (Scanner) Match(path string) bool {
	switch path {
	case etcOSRelease, usrOSRelease, debianVersion:
		return true
	}
	if isLegacy(path) {
		return true
	}
	name, ok := strings.CutPrefix(path, statusDir)
	return ok && name != "" && !strings.Contains(name, "/") && !strings.HasSuffix(name, ".md5sums")
}

// Scan returns at most one distribution, from the preferred matched file.
// A file that is too large, not text, or not in os-release syntax is an error
// naming it.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	byPath := make(map[string]scanner.File, len(files))
	for _, f := range files {
		byPath[f.Path()] = f
	}
	res := &scanner.Result{}
	order := append(append([]string{etcOSRelease, usrOSRelease}, legacyPaths()...), debianVersion)
	for _, p := range order {
		f, ok := byPath[p]
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("os-release: %w", err)
		}
		data, err := readFile(f)
		if err != nil {
			return nil, err
		}
		var d *report.Distribution
		switch p {
		case debianVersion:
			d = FromDebianVersion(data)
		case alpineRelease:
			d = FromAlpineRelease(data)
		case lsbRelease:
			kv, err := Parse(data)
			if err != nil {
				return nil, fmt.Errorf("os-release: parsing %s: %w", p, err)
			}
			d = FromLSBRelease(kv)
		case etcOSRelease, usrOSRelease:
			kv, err := Parse(data)
			if err != nil {
				return nil, fmt.Errorf("os-release: parsing %s: %w", p, err)
			}
			d = FromOSRelease(kv)
		default:
			d = FromReleaseLine(data)
			if d != nil && d.CPE == "" {
				if cf, ok := byPath[systemReleaseCPE]; ok {
					if b, err := readFile(cf); err == nil {
						d.CPE = strings.TrimSpace(string(b))
					}
				}
			}
		}
		if d != nil {
			res.Distributions = append(res.Distributions, d)
			return res, nil
		}
	}
	if d := fromStatusD(ctx, files); d != nil {
		res.Distributions = append(res.Distributions, d)
	}
	return res, nil
}

// fromStatusD returns the distribution the base-files entry of the
// status.d files (in path order) gives, or nil.
func fromStatusD(ctx context.Context, files []scanner.File) *report.Distribution {
	files = slices.DeleteFunc(slices.Clone(files), func(f scanner.File) bool { return !strings.HasPrefix(f.Path(), statusDir) })
	slices.SortFunc(files, func(a, b scanner.File) int { return strings.Compare(a.Path(), b.Path()) })
	for _, f := range files {
		if ctx.Err() != nil {
			return nil
		}
		data, err := readFile(f)
		if err != nil {
			continue
		}
		if v, ok := baseFilesEntry(data); ok {
			if d := FromBaseFiles(v); d != nil {
				return d
			}
		}
	}
	return nil
}

// baseFilesEntry returns the version of an installed base-files package
// described in a dpkg status file (deb822 stanzas separated by empty
// lines): the stanza whose Package is base-files, whose Status, if any,
// ends in "installed" (distroless entries have none), and which has a
// Version.
func baseFilesEntry(data []byte) (string, bool) {
	for _, stanza := range bytes.Split(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\n\n")) {
		fields := map[string]string{}
		for _, line := range bytes.Split(stanza, []byte("\n")) {
			if len(line) == 0 || line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
				continue
			}
			k, v, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				continue
			}
			switch key := strings.ToLower(string(k)); key {
			case "package", "status", "version":
				fields[key] = strings.TrimSpace(string(v))
			}
		}
		if fields["package"] != "base-files" || fields["version"] == "" {
			continue
		}
		if st, ok := fields["status"]; ok && !strings.HasSuffix(st, " installed") {
			continue
		}
		return fields["version"], true
	}
	return "", false
}

// baseFilesVersion is the version of Debian's base-files package: the
// release's major and point version, with "+debNuM" for a stable update
// ("12.4+deb12u5").
var baseFilesVersion = regexp.MustCompile(`^([0-9]+)(\.[0-9]+)*(\+deb([0-9]+)u[0-9]+)?$`)

// FromBaseFiles maps the version of an installed Debian base-files package
// to the distribution, shaped as FromDebianVersion shapes it: "12.4+deb12u5"
// gives Debian 12 (bookworm). It returns nil for any other form: Ubuntu's
// ("12ubuntu4"), a derivative's, or a "+debNuM" suffix naming another
// release than the major version.
func FromBaseFiles(version string) *report.Distribution {
	m := baseFilesVersion.FindStringSubmatch(version)
	if m == nil || (m[4] != "" && m[4] != m[1]) {
		return nil
	}
	return FromDebianVersion([]byte(m[1]))
}

// readFile reads f whole, refusing more than MaxFileSize bytes.
func readFile(f scanner.File) ([]byte, error) {
	if f.Size() > MaxFileSize {
		return nil, fmt.Errorf("os-release: %s: size %d bytes exceeds the limit of %d", f.Path(), f.Size(), MaxFileSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("os-release: opening %s: %w", f.Path(), err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("os-release: reading %s: %w", f.Path(), err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("os-release: %s: more than %d bytes", f.Path(), MaxFileSize)
	}
	return data, nil
}

// debianCodename extracts the codename Debian puts in parentheses at the end
// of VERSION ("12 (bookworm)", "Debian GNU/Linux 12 (bookworm)").
var debianCodename = regexp.MustCompile(`\(([a-z]+)\)\s*$`)

// FromOSRelease maps parsed os-release assignments to a distribution: ID,
// NAME, VERSION, VERSION_ID, PRETTY_NAME and CPE_NAME go to the fields of the
// same meaning. The codename is VERSION_CODENAME, else UBUNTU_CODENAME, else,
// for ID=debian, the parenthesised word ending VERSION (Debian 7 and 8 and
// distroless images have no VERSION_CODENAME). ID, NAME and PRETTY_NAME take
// the defaults os-release(5) gives ("linux", "Linux", "Linux") when unset.
// FromOSRelease returns nil when kv is empty.
func FromOSRelease(kv map[string]string) *report.Distribution {
	if len(kv) == 0 {
		return nil
	}
	get := func(k, def string) string {
		if v := kv[k]; v != "" {
			return v
		}
		return def
	}
	d := &report.Distribution{
		DID:             get("ID", "linux"),
		Name:            get("NAME", "Linux"),
		Version:         kv["VERSION"],
		VersionID:       kv["VERSION_ID"],
		VersionCodeName: get("VERSION_CODENAME", kv["UBUNTU_CODENAME"]),
		PrettyName:      get("PRETTY_NAME", "Linux"),
		CPE:             kv["CPE_NAME"],
	}
	if d.VersionCodeName == "" && d.DID == "debian" {
		if m := debianCodename.FindStringSubmatch(d.Version); m != nil {
			d.VersionCodeName = m[1]
		}
	}
	return d
}

// debianCodenameOf returns the codename of a Debian major version, or "".
func debianCodenameOf(major string) string {
	switch major {
	case "6":
		return "squeeze"
	case "7":
		return "wheezy"
	case "8":
		return "jessie"
	case "9":
		return "stretch"
	case "10":
		return "buster"
	case "11":
		return "bullseye"
	case "12":
		return "bookworm"
	case "13":
		return "trixie"
	case "14":
		return "forky"
	}
	return ""
}

var numericDebianVersion = regexp.MustCompile(`^([0-9]+)(\.[0-9]+)*$`)

// FromDebianVersion maps the contents of etc/debian_version to a
// distribution, shaped like the one Debian's own os-release gives: for
// "12.5", DID "debian", VersionID "12", Version "12 (bookworm)", codename
// "bookworm", Name "Debian GNU/Linux", PrettyName
// "Debian GNU/Linux 12 (bookworm)". It returns nil for anything but a
// numeric version: "bookworm/sid" is written by Debian testing, unstable and
// Ubuntu alike.
func FromDebianVersion(data []byte) *report.Distribution {
	m := numericDebianVersion.FindSubmatch(bytes.TrimSpace(data))
	if m == nil {
		return nil
	}
	major := string(m[1])
	d := &report.Distribution{
		DID:       "debian",
		Name:      "Debian GNU/Linux",
		VersionID: major,
		Version:   major,
	}
	if c := debianCodenameOf(major); c != "" {
		d.VersionCodeName = c
		d.Version = major + " (" + c + ")"
	}
	d.PrettyName = d.Name + " " + d.Version
	return d
}
