package ecosystem

import (
	"regexp"
	"strconv"
	"strings"
)

// semverRE is the lenient semantic-version grammar both claircore's gobin
// package and Masterminds/semver v1 (claircore's nodejs scanner) accept: an
// optional "v", one to three numeric parts, an optional pre-release and an
// optional build.
var semverRE = regexp.MustCompile(`^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$`)

// maxVersionLen bounds the version strings parsed (longer ones have no
// normalized version): the grammars are linear, this only bounds work.
const maxVersionLen = 256

// goSemver is claircore's gobin.ParseVersion: major, minor and patch in
// places 1 to 3, each part cut to its first nine digits.
func goSemver(s string) (v [10]int32, ok bool) { return semver(s, 9, 32) }

// npmSemver is Masterminds/semver v1's NewVersion followed by claircore's
// FromSemver: each part parsed as a 64-bit integer (an overflow is no
// version) and converted to 32 bits as Go converts (keeping the low bits).
func npmSemver(s string) (v [10]int32, ok bool) { return semver(s, 0, 64) }

// semver parses s with semverRE into major, minor and patch in places 1 to
// 3: each part cut to its first maxDigits digits (0: not cut), parsed as a
// bitSize-bit integer (an overflow is no version) and converted to 32 bits.
func semver(s string, maxDigits, bitSize int) (v [10]int32, ok bool) {
	if len(s) > maxVersionLen {
		return v, false
	}
	m := semverRE.FindStringSubmatch(s)
	if m == nil {
		return v, false
	}
	for i, part := range m[1:4] {
		part = strings.TrimPrefix(part, ".")
		if maxDigits > 0 && len(part) > maxDigits {
			part = part[:maxDigits]
		}
		if part == "" {
			continue
		}
		n, err := strconv.ParseInt(part, 10, bitSize)
		if err != nil {
			return v, false
		}
		v[1+i] = int32(n)
	}
	return v, true
}

// pep440RE is claircore's PEP 440 pattern (from PEP 440's appendix), which
// claircore matches anywhere in the string, not anchored.
var pep440RE = regexp.MustCompile(`v?` +
	`(?:` +
	`(?:(?P<epoch>[0-9]+)!)?` +
	`(?P<release>[0-9]+(?:\.[0-9]+)*)` +
	`(?P<pre>[-_\.]?(?P<pre_l>(a|b|c|rc|alpha|beta|pre|preview))[-_\.]?(?P<pre_n>[0-9]+)?)?` +
	`(?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_\.]?(?P<post_l>post|rev|r)[-_\.]?(?P<post_n2>[0-9]+)?))?` +
	`(?P<dev>[-_\.]?(?P<dev_l>dev)[-_\.]?(?P<dev_n>[0-9]+)?)?` +
	`)` +
	`(?:\+(?P<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?`)

// pep440 is claircore's pep440.Parse followed by Version.Version: the epoch
// in place 0, the first five release numbers in places 1 to 5, the
// pre-release label (a -3, b -2, rc -1) and number in 6 and 7, the post
// release in 8, and the dev release in 9, or, without a pre or post release,
// in place 6 as the smallest int32 plus the dev number. Numbers are parsed
// as Go ints (an overflow is no version) and converted to 32 bits.
func pep440(s string) (v [10]int32, ok bool) {
	if len(s) > maxVersionLen {
		return v, false
	}
	m := pep440RE.FindStringSubmatch(s)
	if m == nil {
		return v, false
	}
	var epoch, preN, post, dev int
	var release []int
	var preL string
	for i, name := range pep440RE.SubexpNames() {
		if m[i] == "" {
			continue
		}
		var err error
		switch name {
		case "epoch":
			epoch, err = strconv.Atoi(m[i])
		case "release":
			for _, p := range strings.Split(m[i], ".") {
				var n int
				if n, err = strconv.Atoi(p); err != nil {
					break
				}
				release = append(release, n)
			}
		case "pre_l":
			switch m[i] {
			case "a", "alpha":
				preL = "a"
			case "b", "beta":
				preL = "b"
			default: // rc, c, pre, preview: the pattern allows no other
				preL = "rc"
			}
		case "pre_n":
			preN, err = strconv.Atoi(m[i])
		case "post_n1", "post_n2":
			post, err = strconv.Atoi(m[i])
		case "dev_n":
			dev, err = strconv.Atoi(m[i])
		}
		if err != nil {
			return v, false
		}
	}
	v[0] = int32(epoch)
	for i, n := range release {
		if i > 4 {
			break
		}
		v[1+i] = int32(n)
	}
	switch preL {
	case "a":
		v[6] = -3
	case "b":
		v[6] = -2
	case "rc":
		v[6] = -1
	}
	v[7] = int32(preN)
	v[8] = int32(post)
	if dev != 0 {
		if post != 0 || v[6] != 0 {
			v[9] = -int32(dev)
		} else {
			const minInt32 = -int32((^uint32(0))>>1) - 1
			v[6] = minInt32 + int32(dev)
		}
	}
	return v, true
}
