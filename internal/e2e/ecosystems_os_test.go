package e2e_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
)

// The OS side of the ecosystems, end to end (registry -> API -> JetStream
// -> worker -> Postgres), on the corpus's real files (testdata/fixtures; see
// its SOURCES.md): knqyf263/go-rpmdb's CBL-Mariner 2.0 rpmdb.sqlite and
// aquasecurity/trivy's Mariner 2.0 os-release; trivy's alpine:3.10 layer
// files; anchore/syft's distroless status.d entry; trivy's setuptools and
// Flask metadata.

// dist returns the report's one distribution.
func dist(t *testing.T, r *report.Report) *report.Distribution {
	t.Helper()
	if len(r.Distributions) != 1 {
		t.Fatalf("%d distributions, want 1", len(r.Distributions))
	}
	for _, d := range r.Distributions {
		return d
	}
	return nil
}

// byName returns the report's packages of that name.
func byName(r *report.Report, name string) []*report.Package {
	var out []*report.Package
	for _, p := range r.Packages {
		if p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

// binaries lists "name version arch" of the report's binary packages,
// sorted.
func binaries(r *report.Report) []string {
	var out []string
	for _, p := range r.Packages {
		if p.Kind == report.KindBinary {
			out = append(out, p.Name+" "+p.Version+" "+p.Arch)
		}
	}
	slices.Sort(out)
	return out
}

func TestOSEcosystems(t *testing.T) {
	runEcosystems(t,
		ecosystemCheck{"rpm", checkOSRPM},
		ecosystemCheck{"alpine", checkOSAlpine},
		ecosystemCheck{"wolfi", checkOSWolfi},
		ecosystemCheck{"distroless", checkOSDistroless},
		ecosystemCheck{"debian python owned by dpkg", checkOSPythonOwnedByDpkg},
	)
}

// indexOS pushes files as one layer of repoTag, indexes it and checks
// that the report's distribution is did's version.
func indexOS(t *testing.T, h *harness, repoTag string, files map[string][]byte, did, version string) (*report.Manifest, *report.Report) {
	t.Helper()
	m := h.push(repoTag, files)
	r := h.indexAndWait(m)
	if d := dist(t, r); d.DID != did || d.VersionID != version {
		t.Errorf("distribution %+v", d)
	}
	return m, r
}

// checkOSRPM indexes CBL-Mariner's rpm database: the packages rpm lists, with owned files.
func checkOSRPM(t *testing.T, h *harness) {
	m, r := indexOS(t, h, "os/mariner:2.0", map[string][]byte{
		"etc/os-release":           fixture(t, "osrelease/trivy_mariner-2.0_os-release"),
		"var/lib/rpm/rpmdb.sqlite": fixture(t, "rpm/go-rpmdb_cbl-mariner-2.0_rpmdb.sqlite"),
	}, "mariner", "2.0")
	// Debian's rpm 4.18 listing of the same database.
	var want []string
	for _, l := range strings.Split(string(fixture(t, "reports/derived/go-rpmdb_cbl-mariner-2.0_rpmdb.sqlite.rpm-qa.tsv")), "\n") {
		f := strings.Split(l, "\t") // NAME EPOCH VERSION RELEASE ARCH
		if strings.HasPrefix(l, "#") || len(f) != 5 {
			continue
		}
		v := f[2] + "-" + f[3]
		if f[1] != "(none)" && f[1] != "0" {
			v = f[1] + ":" + v
		}
		want = append(want, f[0]+" "+v+" "+f[4])
	}
	slices.Sort(want)
	if got := binaries(r); !slices.Equal(got, want) || len(got) != 129 {
		t.Errorf("%d binary packages, rpm lists %d:\n got %q\nwant %q", len(got), len(want), got, want)
	}
	curl := byName(r, "curl")
	if len(curl) != 1 || curl[0].Version != "7.76.0-6.cm2" || curl[0].PURL != "pkg:rpm/mariner/curl@7.76.0-6.cm2?arch=x86_64" ||
		curl[0].Source == nil || curl[0].Source.Name != "curl" {
		t.Fatalf("curl: %+v", curl)
	}
	for _, e := range r.Environments[curl[0].ID] {
		if e.PackageDB != "var/lib/rpm/rpmdb.sqlite" || e.IntroducedIn != m.Layers[0].Hash {
			t.Errorf("curl environment %+v", e)
		}
	}
	if n := h.count(`SELECT coalesce(sum(cardinality(o.paths)), 0) FROM owned_files o JOIN layer l ON l.id = o.layer_id WHERE l.hash = $1`, string(m.Layers[0].Hash)); n == 0 {
		t.Error("no owned files stored for the rpm layer")
	}
}

// checkOSAlpine indexes Alpine 3.10's apk database.
func checkOSAlpine(t *testing.T, h *harness) {
	_, r := indexOS(t, h, "os/alpine:3.10", map[string][]byte{
		"etc/os-release":       fixture(t, "osrelease/trivy_alpine-310_os-release"),
		"lib/apk/db/installed": fixture(t, "apk/trivy_alpine-310_installed"),
	}, "alpine", "3.10.4")
	if got := binaries(r); len(got) != 14 {
		t.Errorf("%d packages, want alpine:3.10's 14: %q", len(got), got)
	}
	musl := byName(r, "musl")
	if len(musl) != 1 || musl[0].PURL != "pkg:apk/alpine/musl@1.1.22-r3?arch=x86_64&distro=alpine-3.10.4" {
		t.Errorf("musl: %+v", musl)
	}
}

// checkOSWolfi indexes an apk database under Wolfi's os-release.
func checkOSWolfi(t *testing.T, h *harness) {
	// anchore/syft's Wolfi os-release over an apk database: the
	// packages are Wolfi's, not Alpine's.
	_, r := indexOS(t, h, "os/wolfi:1", map[string][]byte{
		"etc/os-release":       fixture(t, "osrelease/syft_wolfi_os-release"),
		"lib/apk/db/installed": fixture(t, "apk/trivy_alpine-310_installed"),
	}, "wolfi", "20220914")
	musl := byName(r, "musl")
	if len(musl) != 1 || musl[0].PURL != "pkg:apk/wolfi/musl@1.1.22-r3?arch=x86_64&distro=wolfi-20220914" {
		t.Errorf("musl: %+v", musl)
	}
}

// checkOSDistroless indexes a distroless image: dpkg status.d files, no os-release.
func checkOSDistroless(t *testing.T, h *harness) {
	// No os-release: the distribution comes from base-files' status.d
	// entry (as Debian 11 ships it; distroless keeps it in this form).
	baseFiles := []byte("Package: base-files\nEssential: yes\nPriority: required\nSection: admin\nInstalled-Size: 340\n" +
		"Maintainer: Santiago Vila <sanvila@debian.org>\nArchitecture: arm64\nMulti-Arch: foreign\nVersion: 11.1+deb11u5\n" +
		"Replaces: base, dpkg (<= 1.15.0), miscutils\nProvides: base\nPre-Depends: awk\nBreaks: initscripts (<< 2.88dsf-13.3), sendfile (<< 2.1b.20080616-5.2~)\n" +
		"Description: Debian base system miscellaneous files\n This package contains the basic filesystem hierarchy of a Debian system, and\n several important miscellaneous files.\n")
	_, r := indexOS(t, h, "os/distroless:11", map[string][]byte{
		"var/lib/dpkg/status.d/base-files":           baseFiles,
		"var/lib/dpkg/status.d/libsqlite3-0":         fixture(t, "dpkg/syft_status.d_libsqlite3-0"),
		"var/lib/dpkg/status.d/libsqlite3-0.md5sums": fixture(t, "dpkg/syft_status.d_libsqlite3-0.md5sums"),
	}, "debian", "11")
	if d := dist(t, r); d.VersionCodeName != "bullseye" {
		t.Errorf("distribution %+v", d)
	}
	want := []string{"base-files 11.1+deb11u5 arm64", "libsqlite3-0 3.34.1-3 arm64"}
	if got := binaries(r); !slices.Equal(got, want) {
		t.Errorf("packages %q, want %q", got, want)
	}
}

// checkOSPythonOwnedByDpkg checks that a Python package dpkg owns is reported once, by dpkg.
func checkOSPythonOwnedByDpkg(t *testing.T, h *harness) {
	// Debian's python3-setuptools installs setuptools' egg-info under
	// dist-packages; pip installed Flask under /usr/local. The python
	// scanner finds both metadata files; setuptools is reported once,
	// by dpkg.
	const eggInfo = "usr/lib/python3/dist-packages/setuptools-51.3.3.egg-info"
	status := []byte("Package: python3-setuptools\nStatus: install ok installed\nPriority: optional\nSection: python\n" +
		"Installed-Size: 1580\nMaintainer: Debian Python Team <team+python@tracker.debian.org>\nArchitecture: all\n" +
		"Source: setuptools\nVersion: 51.3.3-1\nDepends: python3-pkg-resources (= 51.3.3-1), python3:any\n" +
		"Description: Python3 Distutils Enhancements\n\n")
	list := []byte("/.\n/usr\n/usr/lib\n/usr/lib/python3\n/usr/lib/python3/dist-packages\n/" + eggInfo + "\n/" + eggInfo + "/PKG-INFO\n" +
		"/usr/lib/python3/dist-packages/setuptools\n/usr/lib/python3/dist-packages/setuptools/__init__.py\n" +
		"/usr/share/doc/python3-setuptools\n/usr/share/doc/python3-setuptools/copyright\n")
	files := map[string][]byte{
		"etc/os-release":      fixture(t, "osrelease/claircore_debian-12_os-release"),
		"var/lib/dpkg/status": status,
		eggInfo + "/PKG-INFO": fixture(t, "python/trivy_setuptools-51.3.3.egg-info_PKG-INFO"),
		"usr/local/lib/python3.11/dist-packages/Flask-2.0.0.dist-info/METADATA": fixture(t, "python/trivy_Flask-2.0.0.dist-info_METADATA"),
	}
	// Control: without dpkg's file list nothing says who owns the
	// egg-info, and the python scanner's setuptools is reported.
	r := h.indexAndWait(h.push("os/debian-python:nolist", files))
	if len(byName(r, "setuptools")) != 1 || len(byName(r, "flask")) != 1 {
		t.Fatalf("control image: packages %q", binaries(r))
	}

	files["var/lib/dpkg/info/python3-setuptools.list"] = list
	m := h.push("os/debian-python:list", files)
	r = h.indexAndWait(m)
	if got := byName(r, "setuptools"); len(got) != 0 {
		t.Errorf("setuptools reported by the python scanner although dpkg owns %s: %+v", eggInfo, got[0])
	}
	if got := byName(r, "python3-setuptools"); len(got) != 1 || got[0].Version != "51.3.3-1" {
		t.Errorf("python3-setuptools: %+v", got)
	}
	if got := byName(r, "flask"); len(got) != 1 || !strings.HasPrefix(got[0].PURL, "pkg:pypi/flask@2.0.0") {
		t.Errorf("pip-installed flask (named in lower case, as claircore): %+v", got)
	}
	// The ownership is stored per (layer, scanner).
	if n := h.count(`SELECT count(*) FROM owned_files o JOIN layer l ON l.id = o.layer_id
WHERE l.hash = $1 AND $2 = ANY(o.paths)`, string(m.Layers[0].Hash), eggInfo+"/PKG-INFO"); n != 1 {
		t.Errorf("%d owned_files rows hold %s, want 1", n, eggInfo+"/PKG-INFO")
	}
}
