package affected

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

// rhel8 is the CPE of RHEL 8 BaseOS.
const rhel8 = "cpe:/o:redhat:enterprise_linux:8::baseos"

// Records and vulnerabilities of TestDecide.
func rhelRec(version, arch, module string) *Record {
	return &Record{
		Package: &Package{Name: "openssl-libs", Version: version, Arch: arch, Module: module},
		Dist:    &Distribution{DID: "rhel", VersionID: "8.6"},
		Repo:    &Repository{Name: "rhel-8-for-x86_64-baseos-rpms", Key: rhelRepoKey, CPE: rhel8},
	}
}

func rhelVuln(cpe, fixed, version, arch string, op ArchOp) *Vulnerability {
	return &Vulnerability{ID: "RHSA-2022:8840", Package: &Package{Name: "openssl-libs", Version: version, Arch: arch},
		Repo: &Repository{Name: cpe, Key: rhelRepoKey}, FixedInVersion: fixed, ArchOp: op}
}

func gemRec(version string) *Record {
	return &Record{Package: &Package{Name: "rss", Version: version}, Repo: &Repository{Name: gemRepoName, URI: "https://rubygems.org/gems/"}}
}

func gemVuln(fixed string) *Vulnerability {
	return &Vulnerability{ID: "GHSA-rss", Package: &Package{Name: "rss"}, Repo: &Repository{Name: gemRepoName}, FixedInVersion: fixed}
}

func mkDist(did, name, versionID string) *Distribution {
	return &Distribution{DID: did, Name: name, VersionID: versionID, PrettyName: name + " " + versionID}
}

func osRec(d *Distribution, version string) *Record {
	return &Record{Package: &Package{Name: "zlib", Version: version}, Dist: d}
}

func osVuln(d *Distribution, fixed string) *Vulnerability {
	return &Vulnerability{ID: "CVE-zlib", Package: &Package{Name: "zlib"}, Dist: d, FixedInVersion: fixed}
}

func goRec(version, normalized string) *Record {
	return &Record{Package: &Package{Name: "golang.org/x/net", Version: version, NormalizedVersion: normalized}, Repo: &Repository{Name: "go", URI: goRepoURI}}
}

func goVuln(fixed string, r *Range) *Vulnerability {
	return &Vulnerability{ID: "GO-x", Package: &Package{Name: "golang.org/x/net"}, Repo: &Repository{Name: "go", URI: goRepoURI}, FixedInVersion: fixed, Range: r}
}

func semverRange(lo, hi [3]int32) *Range {
	r := &Range{Lower: Version{Kind: "semver"}, Upper: Version{Kind: "semver"}}
	copy(r.Lower.V[1:], lo[:])
	copy(r.Upper.V[1:], hi[:])
	return r
}

var debDist, ubuDist, alpDist = mkDist("debian", "Debian GNU/Linux", "12"), mkDist("ubuntu", "Ubuntu", "22.04"), mkDist("alpine", "Alpine Linux", "3.18")

func TestDecide(t *testing.T) {
	for _, c := range []struct {
		name       string
		rec        *Record
		vuln       *Vulnerability
		vulnerable bool
		known      bool
	}{
		{"rhel fixed above", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln(rhel8, "1:1.1.1k-8.el8_6", "", "x86_64|aarch64", ArchOpPatternMatch), true, true},
		{"rhel fixed below", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln(rhel8, "1:1.1.1k-6.el8_5", "", "", ArchOpEquals), false, true},
		{"rhel epoch decides", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln(rhel8, "1.1.1z-1.el8", "", "", ArchOpEquals), false, true},
		{"rhel other major", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln("cpe:/o:redhat:enterprise_linux:9::baseos", "1:3.0.7-1.el9", "", "", ArchOpEquals), false, true},
		{"rhel CPE prefix", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln("cpe:/o:redhat:enterprise_linux:8", "1:1.1.1k-8.el8_6", "", "", ArchOpEquals), true, true},
		{"rhel other arch", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln(rhel8, "1:1.1.1k-8.el8_6", "", "aarch64", ArchOpEquals), false, true},
		{"rhel not equals arch", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln(rhel8, "1:1.1.1k-8.el8_6", "", "aarch64", ArchOpNotEquals), true, true},
		{"rhel invalid op with arch", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln(rhel8, "1:1.1.1k-8.el8_6", "", "x86_64", ArchOpInvalid), false, true},
		{"rhel affected version", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln(rhel8, "", "1:1.1.1k-7.el8_6", "", ArchOpEquals), true, true},
		{"rhel unfixed", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln(rhel8, "", "", "", ArchOpEquals), true, true},
		{"rhel other module", rhelRec("1:1.1.1k-7.el8_6", "x86_64", "openssl:3"), rhelVuln(rhel8, "1:1.1.1k-8.el8_6", "", "", ArchOpEquals), false, false},
		{"rhel bad CPE", rhelRec("1:1.1.1k-7.el8_6", "x86_64", ""), rhelVuln("not a cpe", "1:1.1.1k-8.el8_6", "", "", ArchOpEquals), false, true},
		{"gem fixed above", gemRec("0.2.9"), gemVuln("fixed=0.3.0"), true, true},
		{"gem fixed below", gemRec("0.2.9"), gemVuln("fixed=0.2.8"), false, true},
		{"gem introduced above", gemRec("0.2.9"), gemVuln("introduced=0.3.0"), false, true},
		{"gem last affected", gemRec("0.2.9"), gemVuln("lastAffected=0.2.9"), true, true},
		{"gem prerelease", gemRec("0.3.0.pre.1"), gemVuln("fixed=0.3.0"), true, true},
		{"gem bad query", gemRec("0.2.9"), gemVuln("fixed=%zz"), false, true},
		{"gem other repo", gemRec("0.2.9"), &Vulnerability{ID: "x", Package: &Package{Name: "rss"}, Repo: &Repository{Name: "pypi"}, FixedInVersion: "fixed=1"}, false, false},
		{"debian 0 means not affected", osRec(debDist, "1:1.2.13.dfsg-1"), osVuln(debDist, "0"), false, true},
		{"debian epoch", osRec(debDist, "1:1.2.13.dfsg-1"), osVuln(debDist, "1.3-1"), false, true},
		{"debian other release", osRec(debDist, "1:1.2.13.dfsg-1"), osVuln(mkDist("debian", "Debian GNU/Linux", "11"), "1:1.3-1"), false, false},
		{"debian bad installed version", osRec(debDist, "not a version!"), osVuln(debDist, "1:1.3-1"), false, true},
		{"ubuntu 0 means unfixed", osRec(ubuDist, "1:1.2.11.dfsg-2ubuntu9"), osVuln(ubuDist, "0"), true, true},
		{"ubuntu fixed above", osRec(ubuDist, "1:1.2.11.dfsg-2ubuntu9"), osVuln(ubuDist, "1:1.2.11.dfsg-2ubuntu9.2"), true, true},
		{"alpine 0 means not affected", osRec(alpDist, "1.2.13-r1"), osVuln(alpDist, "0"), false, true},
		{"alpine fixed above", osRec(alpDist, "1.2.13-r1"), osVuln(alpDist, "1.2.13-r2"), true, true},
		{"alpine other pretty name", osRec(alpDist, "1.2.13-r1"), osVuln(&Distribution{DID: "alpine", Name: "Alpine Linux", PrettyName: "Alpine Linux v3.19"}, "1.2.13-r2"), false, false},
		{"no distribution", osRec(nil, "1.2.13-r1"), osVuln(alpDist, "1.2.13-r2"), false, false},
		{"unknown distribution", osRec(mkDist("wolfi", "Wolfi", "20230201"), "1.2.13-r1"), osVuln(mkDist("wolfi", "Wolfi", "20230201"), "1.2.13-r2"), false, false},
		{"go range", goRec("v0.7.0", ""), goVuln("", semverRange([3]int32{0, 0, 0}, [3]int32{0, 17, 0})), true, true},
		{"go range above", goRec("v0.17.0", ""), goVuln("", semverRange([3]int32{0, 0, 0}, [3]int32{0, 17, 0})), false, true},
		{"go stored normalized version wins", goRec("v0.17.0", "semver:0.0.7.0.0.0.0.0.0.0"), goVuln("", semverRange([3]int32{0, 0, 0}, [3]int32{0, 17, 0})), true, true},
		{"go pseudo-version", goRec("v0.0.0-20210405180319-a5a99cb37ef4", ""), goVuln("", semverRange([3]int32{0, 0, 0}, [3]int32{0, 7, 0})), true, true},
		{"go fixed without range", goRec("v0.7.0", ""), goVuln("v0.17.0", nil), true, true},
		{"go fixed below without range", goRec("v0.7.0", ""), goVuln("v0.6.0", nil), false, true},
		{"go neither", goRec("v0.7.0", ""), goVuln("", nil), true, true},
		{"go devel", goRec("(devel)", ""), goVuln("", nil), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &Finder{log: slog.Default()}
			vulnerable, known := f.decide(context.Background(), []*Record{c.rec}, c.vuln)
			if vulnerable != c.vulnerable || known != c.known {
				t.Fatalf("vulnerable %v (ecosystem known %v), want %v (%v)", vulnerable, known, c.vulnerable, c.known)
			}
		})
	}
}

func TestVersionText(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		err  bool
	}{
		{"semver:0.1.2.3.0.0.0.0.0.0", "semver:0.1.2.3.0.0.0.0.0.0", false},
		{"pep440:0.5.1", "pep440:0.5.1.0.0.0.0.0.0.0", false},
		{"", "", false},
		{"no colon", "", false},
		{":1.2", "", true},
		{"semver:1.2.x", "", true},
		{"semver:1.2.3.4.5.6.7.8.9.10.11", "", true},
		{"semver:99999999999", "", true},
	} {
		var v Version
		err := v.UnmarshalText([]byte(c.in))
		if (err != nil) != c.err {
			t.Errorf("%q: error %v, want error %v", c.in, err, c.err)
			continue
		}
		out, _ := v.MarshalText()
		if !c.err && string(out) != c.want {
			t.Errorf("%q: %q, want %q", c.in, out, c.want)
		}
	}
}

// FuzzVulnerabilities feeds vulnerabilities from outside (a notifier's
// request) to every matcher, against records of every ecosystem: no input
// may crash the decision.
func FuzzVulnerabilities(f *testing.F) {
	f.Add([]byte(`{"id":"1","package":{"name":"zlib"},"distribution":{"did":"debian","name":"Debian GNU/Linux","version_id":"12"},"fixed_in_version":"1:1.3"}`))
	f.Add([]byte(`{"id":"1","package":{"name":"rss","arch":"(x"},"repository":{"name":"rubygems","key":"rhel-cpe-repository"},"fixed_in_version":"fixed=%ff&introduced=~","arch_op":"pattern match"}`))
	f.Add([]byte(`{"id":"1","package":{"name":"x"},"repository":{"name":"go","uri":"https://pkg.go.dev/"},"range":{"[":"semver:0.0.0","）":"semver:9"}}`))
	f.Add([]byte(`{"id":"1","package":{"name":"x","module":""},"repository":{"name":"cpe:2.3:o:redhat:*","key":"rhel-cpe-repository"},"fixed_in_version":"::-"}`))
	records := []*Record{
		{Package: &Package{Name: "x", Version: "1:1.2-3"}, Dist: &Distribution{DID: "debian", Name: "Debian GNU/Linux", VersionID: "12"}},
		{Package: &Package{Name: "x", Version: "1.2-r3"}, Dist: &Distribution{DID: "alpine", Name: "Alpine Linux", PrettyName: "Alpine Linux v3.18"}},
		{Package: &Package{Name: "x", Version: "1:1.2-3.el8", Arch: "x86_64"}, Repo: &Repository{Key: rhelRepoKey, CPE: "cpe:/o:redhat:enterprise_linux:8::baseos"}},
		{Package: &Package{Name: "x", Version: "v1.2.3", NormalizedVersion: "semver:0.1.2.3.0.0.0.0.0.0"}, Repo: &Repository{Name: "go", URI: goRepoURI}},
		{Package: &Package{Name: "x", Version: "1.2.3"}, Repo: &Repository{Name: npmRepoName}},
		{Package: &Package{Name: "x", Version: "1.2.post3", NormalizedVersion: "pep440:"}, Repo: &Repository{Name: pypiRepoName}},
		{Package: &Package{Name: "x", Version: "1.2.3-SNAPSHOT"}, Repo: &Repository{Name: mavenRepoName}},
		{Package: &Package{Name: "x", Version: "1.2.3.pre"}, Repo: &Repository{Name: gemRepoName}},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Vulnerability
		if json.Unmarshal(b, &v) != nil || v.Package == nil {
			return
		}
		fd := &Finder{log: slog.New(slog.DiscardHandler)}
		fd.decide(context.Background(), records, &v)
		if _, err := json.Marshal(echo(&v)); err != nil {
			t.Fatalf("echo of %s: %v", b, err)
		}
	})
}
