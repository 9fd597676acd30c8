package osrelease

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func scanOne(t *testing.T, layerPath string, data []byte) (*report.Distribution, error) {
	t.Helper()
	res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(layerPath, data)})
	if err != nil {
		return nil, err
	}
	switch len(res.Distributions) {
	case 0:
		return nil, nil
	case 1:
		return res.Distributions[0], nil
	}
	t.Fatalf("%d distributions, want at most 1", len(res.Distributions))
	return nil, nil
}

// fixtureWant is what TestFixtures expects of an os-release file.
type fixtureWant struct {
	did, versionID, codename, cpe string
}

// fixtureWants are the expectations of TestFixtures, by fixture, written by
// reading each file.
var fixtureWants = map[string]fixtureWant{
	"claircore_alpine-3.3_os-release":                     {"alpine", "3.3.3", "", ""},
	"claircore_alpine-3.4_os-release":                     {"alpine", "3.4.6", "", ""},
	"claircore_alpine-3.5_os-release":                     {"alpine", "3.5.3", "", ""},
	"claircore_alpine-3.6_os-release":                     {"alpine", "3.6.5", "", ""},
	"claircore_alpine-3.7_os-release":                     {"alpine", "3.7.3", "", ""},
	"claircore_alpine-3.8_os-release":                     {"alpine", "3.8.5", "", ""},
	"claircore_alpine-3.9_os-release":                     {"alpine", "3.9.6", "", ""},
	"claircore_alpine-3.10_os-release":                    {"alpine", "3.10.9", "", ""},
	"claircore_alpine-3.11_os-release":                    {"alpine", "3.11.13", "", ""},
	"claircore_alpine-3.12_os-release":                    {"alpine", "3.12.9", "", ""},
	"claircore_alpine-3.13_os-release":                    {"alpine", "3.13.7", "", ""},
	"claircore_alpine-3.14_os-release":                    {"alpine", "3.14.3", "", ""},
	"claircore_alpine-3.15_os-release":                    {"alpine", "3.15.0", "", ""},
	"claircore_alpine-3.16_os-release":                    {"alpine", "3.16.0", "", ""},
	"claircore_alpine-3.17_os-release":                    {"alpine", "3.17.5", "", ""},
	"claircore_alpine-3.18_os-release":                    {"alpine", "3.18.4", "", ""},
	"claircore_alpine-edge_os-release":                    {"alpine", "3.19_alpha20230901", "", ""},
	"trivy_alpine-310_os-release":                         {"alpine", "3.10.4", "", ""},
	"trivy_alpine-311_os-release":                         {"alpine", "3.11.5", "", ""},
	"claircore_debian-7_os-release":                       {"debian", "7", "wheezy", ""}, // codename from VERSION="7 (wheezy)"
	"claircore_debian-8_os-release":                       {"debian", "8", "jessie", ""}, // codename from VERSION
	"claircore_debian-9_os-release":                       {"debian", "9", "stretch", ""},
	"claircore_debian-10_os-release":                      {"debian", "10", "buster", ""},
	"claircore_debian-11_os-release":                      {"debian", "11", "bullseye", ""},
	"claircore_debian-12_os-release":                      {"debian", "12", "bookworm", ""},
	"syft_debian-with-point-release_os-release":           {"debian", "13", "trixie", ""},
	"claircore_debian-distroless-9_os-release":            {"debian", "9", "stretch", ""}, // VERSION="Debian GNU/Linux 9 (stretch)"
	"claircore_debian-distroless-10_os-release":           {"debian", "10", "buster", ""},
	"claircore_debian-distroless-11_os-release":           {"debian", "11", "bullseye", ""},
	"claircore_ubuntu-12.04_os-release":                   {"ubuntu", "12.04", "", ""}, // no codename key; VERSION="12.04.5 LTS, Precise Pangolin"
	"claircore_ubuntu-12.10_os-release":                   {"ubuntu", "12.10", "", ""},
	"claircore_ubuntu-13.04_os-release":                   {"ubuntu", "13.04", "", ""},
	"claircore_ubuntu-13.10_os-release":                   {"ubuntu", "13.10", "", ""},
	"claircore_ubuntu-14.04_os-release":                   {"ubuntu", "14.04", "", ""},
	"claircore_ubuntu-14.10_os-release":                   {"ubuntu", "14.10", "", ""},
	"claircore_ubuntu-15.04_os-release":                   {"ubuntu", "15.04", "", ""},
	"claircore_ubuntu-15.10_os-release":                   {"ubuntu", "15.10", "", ""},
	"claircore_ubuntu-16.04_os-release":                   {"ubuntu", "16.04", "xenial", ""},
	"claircore_ubuntu-16.10_os-release":                   {"ubuntu", "16.10", "yakkety", ""},
	"claircore_ubuntu-17.04_os-release":                   {"ubuntu", "17.04", "zesty", ""},
	"claircore_ubuntu-17.10_os-release":                   {"ubuntu", "17.10", "artful", ""},
	"claircore_ubuntu-18.04_os-release":                   {"ubuntu", "18.04", "bionic", ""},
	"claircore_ubuntu-18.10_os-release":                   {"ubuntu", "18.10", "cosmic", ""},
	"claircore_ubuntu-19.04_os-release":                   {"ubuntu", "19.04", "disco", ""},
	"claircore_ubuntu-19.10_os-release":                   {"ubuntu", "19.10", "eoan", ""},
	"claircore_ubuntu-20.04_os-release":                   {"ubuntu", "20.04", "focal", ""},
	"claircore_ubuntu-20.10_os-release":                   {"ubuntu", "20.10", "groovy", ""},
	"claircore_ubuntu-21.04_os-release":                   {"ubuntu", "21.04", "hirsute", ""},
	"claircore_ubuntu-21.10_os-release":                   {"ubuntu", "21.10", "impish", ""},
	"claircore_ubuntu-22.04_os-release":                   {"ubuntu", "22.04", "jammy", ""},
	"claircore_ubuntu-22.10_os-release":                   {"ubuntu", "22.10", "kinetic", ""},
	"claircore_ubuntu-23.04_os-release":                   {"ubuntu", "23.04", "lunar", ""},
	"claircore_ubuntu-23.10_os-release":                   {"ubuntu", "23.10", "mantic", ""},
	"claircore_rhel-releasefiles-7_os-release":            {"rhel", "7.7", "", "cpe:/o:redhat:enterprise_linux:7.7:GA:server"},
	"claircore_rhel-releasefiles-8_os-release":            {"rhel", "8.1", "", "cpe:/o:redhat:enterprise_linux:8.1:GA"},
	"claircore_rhel-releasefiles-9_os-release":            {"rhel", "9.0", "", "cpe:/o:redhat:enterprise_linux:9::baseos"},
	"claircore_rhel-releasefiles-atomichost-7_os-release": {"rhel", "7.9", "", "cpe:/o:redhat:enterprise_linux:7.9:GA:atomic-host"},
	"claircore_rhel-releasefiles-hummingbird_os-release":  {"hummingbird", "20251124", "", "cpe:/a:redhat:hummingbird:1"},
	"syft_redhat-from-os-release_os-release":              {"rhel", "7.3", "", "cpe:/o:redhat:enterprise_linux:7.3:GA:server"},
	"trivy_rhel_os-release":                               {"rhel", "9.4", "", "cpe:/o:redhat:enterprise_linux:9::baseos"},
	"syft_centos_os-release":                              {"centos", "8", "", "cpe:/o:centos:centos:8"},
	"trivy_centos_os-release":                             {"centos", "7", "", "cpe:/o:centos:centos:7"},
	"trivy_centos-stream_os-release":                      {"centos", "8", "", "cpe:/o:centos:centos:8"},
	"syft_rockylinux-from-os-release_os-release":          {"rocky", "8.4", "", "cpe:/o:rocky:rocky:8.4:GA"},
	"trivy_rocky_os-release":                              {"rocky", "9.3", "", "cpe:/o:rocky:rocky:9::baseos"},
	"syft_almalinux-from-os-release_os-release":           {"almalinux", "8.4", "", "cpe:/o:almalinux:almalinux:8.4:GA"},
	"trivy_alma_os-release":                               {"almalinux", "9.4", "", "cpe:/o:almalinux:almalinux:9::baseos"},
	"syft_fedora_os-release":                              {"fedora", "36", "", "cpe:/o:fedoraproject:fedora:36"}, // VERSION_CODENAME=""
	"trivy_fedora_os-release":                             {"fedora", "42", "", "cpe:/o:fedoraproject:fedora:42"},
	"syft_oraclelinux_os-release":                         {"ol", "8.3", "", "cpe:/o:oracle:linux:8:3:server"},
	"trivy_oracle_os-release":                             {"ol", "8.10", "", "cpe:/o:oracle:linux:8:10:server"},
	"syft_scientific-from-os-release_os-release":          {"scientific", "7.5", "", "cpe:/o:scientificlinux:scientificlinux:7.5:GA"},
	"syft_amazon_os-release":                              {"amzn", "2", "", "cpe:2.3:o:amazon:amazon_linux:2"},
	"syft_arch_os-release":                                {"arch", "", "", ""},
	"syft_mariner_os-release":                             {"mariner", "1.0", "", ""},
	"trivy_mariner-1.0_os-release":                        {"mariner", "1.0", "", ""},
	"trivy_mariner-2.0_os-release":                        {"mariner", "2.0", "", ""},
	"trivy_azurelinux-3.0_os-release":                     {"azurelinux", "3.0", "", ""},
	"syft_photon_os-release":                              {"photon", "2.0", "", ""},
	"trivy_photon_os-release":                             {"photon", "4.0", "", ""},
	"syft_wolfi_os-release":                               {"wolfi", "20220914", "", ""},
	"trivy_minimos_os-release":                            {"minimos", "20241031", "", ""},
	"trivy_bottlerocket_os-release":                       {"bottlerocket", "1.34.0", "", ""},
	"syft_opensuse-leap_os-release":                       {"opensuse-leap", "15.2", "", "cpe:/o:opensuse:leap:15.2"},
	"trivy_opensuseleap-15.2.1_os-release":                {"opensuse-leap", "15.2.1", "", "cpe:/o:opensuse:leap:15.2.1"},
	"trivy_opensuseleap-42.3_os-release":                  {"opensuse", "42.3", "", "cpe:/o:opensuse:leap:42.3"},
	"trivy_opensusetumbleweed_os-release":                 {"opensuse-tumbleweed", "20220412", "", "cpe:/o:opensuse:tumbleweed:20220412"},
	"syft_sles_os-release":                                {"sles", "15.2", "", "cpe:/o:suse:sles:15:sp2"},
	"trivy_sles_os-release":                               {"sles", "15.3", "", "cpe:/o:suse:sles:15:sp3"},
	"trivy_slemicro_os-release":                           {"sle-micro", "5.3", "", "cpe:/o:suse:sle-micro:5.3"},
	"trivy_slemicro-rancher_os-release":                   {"sle-micro-rancher", "5.4", "", "cpe:/o:suse:sle-micro-rancher:5.4"},
	"trivy_slemicro6.0_os-release":                        {"sl-micro", "6.0", "", "cpe:/o:suse:sl-micro:6.0"},
}

// TestFixtures checks the distribution found in every os-release file of the
// corpus. The files come from quay/claircore (claircore_*), anchore/syft
// (syft_*) and aquasecurity/trivy (trivy_*) test data; see
// testdata/fixtures/SOURCES.md. The expectations were written by reading each
// file.
func TestFixtures(t *testing.T) {
	tests := fixtureWants

	// Every os-release file of the corpus must be in the table.
	dir := fixtures.Path(t, "osrelease")
	all, err := filepath.Glob(filepath.Join(dir, "*_os-release"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		if _, ok := tests[filepath.Base(p)]; !ok {
			t.Errorf("fixture %s has no expectation in the table", filepath.Base(p))
		}
	}

	for name, w := range tests {
		t.Run(name, func(t *testing.T) {
			for _, layerPath := range []string{"etc/os-release", "usr/lib/os-release"} {
				f := scannertest.FromDisk(t, layerPath, fixtures.Path(t, "osrelease/"+name))
				res, err := Scanner{}.Scan(context.Background(), []scanner.File{f})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Distributions) != 1 {
					t.Fatalf("%s: %d distributions, want 1", layerPath, len(res.Distributions))
				}
				d := res.Distributions[0]
				got := fixtureWant{d.DID, d.VersionID, d.VersionCodeName, d.CPE}
				if got != w {
					t.Errorf("%s: got %+v, want %+v", layerPath, got, w)
				}
				if d.Name == "" || d.PrettyName == "" {
					t.Errorf("%s: empty Name or PrettyName: %+v", layerPath, d)
				}
			}
		})
	}
}

// TestFixtureFields spot-checks the fields not in TestFixtures on a few of the
// same corpus files (quay/claircore, anchore/syft, aquasecurity/trivy).
func TestFixtureFields(t *testing.T) {
	tests := []struct {
		file string
		want report.Distribution
	}{
		{"claircore_debian-12_os-release", report.Distribution{
			DID: "debian", Name: "Debian GNU/Linux", Version: "12 (bookworm)", VersionID: "12",
			VersionCodeName: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)",
		}},
		{"claircore_ubuntu-12.04_os-release", report.Distribution{
			DID: "ubuntu", Name: "Ubuntu", Version: "12.04.5 LTS, Precise Pangolin", VersionID: "12.04",
			PrettyName: "Ubuntu precise (12.04.5 LTS)",
		}},
		{"claircore_debian-distroless-11_os-release", report.Distribution{
			DID: "debian", Name: "Debian GNU/Linux", Version: "Debian GNU/Linux 11 (bullseye)", VersionID: "11",
			VersionCodeName: "bullseye", PrettyName: "Distroless",
		}},
		{"trivy_rocky_os-release", report.Distribution{ // no trailing newline
			DID: "rocky", Name: "Rocky Linux", Version: "9.3 (Blue Onyx)", VersionID: "9.3",
			PrettyName: "Rocky Linux 9.3 (Blue Onyx)", CPE: "cpe:/o:rocky:rocky:9::baseos",
		}},
		{"trivy_opensusetumbleweed_os-release", report.Distribution{ // VERSION is commented out
			DID: "opensuse-tumbleweed", Name: "openSUSE Tumbleweed", VersionID: "20220412",
			PrettyName: "openSUSE Tumbleweed", CPE: "cpe:/o:opensuse:tumbleweed:20220412",
		}},
		{"syft_photon_os-release", report.Distribution{ // blank after the last closing quote
			DID: "photon", Name: "VMware Photon OS", Version: "2.0", VersionID: "2.0",
			PrettyName: "VMware Photon OS/Linux",
		}},
		{"syft_arch_os-release", report.Distribution{DID: "arch", Name: "Arch Linux", PrettyName: "Arch Linux"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := scannertest.ReadFixture(t, "osrelease/"+tt.file)
			d, err := scanOne(t, "etc/os-release", data)
			if err != nil {
				t.Fatal(err)
			}
			if d == nil || *d != tt.want {
				t.Errorf("got %+v\nwant %+v", d, tt.want)
			}
		})
	}
}

// txtarSections splits a txtar archive ("-- name --" headers) into its files.
func txtarSections(data []byte) map[string][]byte {
	out := make(map[string][]byte)
	var name string
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if strings.HasPrefix(s, "-- ") && strings.HasSuffix(s, " --") && len(s) > 6 {
			name = s[3 : len(s)-3]
			out[name] = []byte{}
			continue
		}
		if name != "" {
			out[name] = append(out[name], line...)
		}
	}
	return out
}

// TestClaircoreTxtar compares Parse with claircore's expected parse of each
// of its osrelease test cases (quay/claircore osrelease/testdata/*.txtar: an
// os-release input, the "Parsed" key/value map and the "Distribution").
// Parsed must match exactly. The Distribution is compared field by field,
// except where this scanner deliberately differs from claircore, listed in
// diverge.
func TestClaircoreTxtar(t *testing.T) {
	// diverge lists, per case, the Distribution JSON fields expected to
	// differ from claircore's, with this scanner's value.
	diverge := map[string]map[string]string{
		// claircore rewrites PRETTY_NAME for Fedora and RHEL; this scanner
		// reports PRETTY_NAME as written.
		"Silverblue": {"pretty_name": "Fedora 30.20191008.1 (Workstation Edition)"},
		"Toolbox":    {"pretty_name": "Fedora 30 (Container Image)"},
		"Ubi8":       {"pretty_name": "Red Hat Enterprise Linux 8.0 (Ootpa)"},
		// claircore leaves the codename empty when VERSION_CODENAME is
		// missing; for Debian this scanner reads it from VERSION.
		"DistrolessCorrupt": {"version_code_name": "bookworm"},
	}
	paths, err := filepath.Glob(filepath.Join(fixtures.Path(t, "osrelease"), "claircore_*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 11 {
		t.Errorf("found %d claircore txtar cases, want 11", len(paths))
	}
	for _, p := range paths {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "claircore_"), ".txtar")
		t.Run(name, func(t *testing.T) {
			data := scannertest.ReadFile(t, p)
			sec := txtarSections(data)
			in, parsed, dist := sec["os-release"], sec["Parsed"], sec["Distribution"]
			if in == nil || parsed == nil || dist == nil {
				t.Fatalf("sections missing: have %d", len(sec))
			}
			var wantKV map[string]string
			if err := json.Unmarshal(parsed, &wantKV); err != nil {
				t.Fatal(err)
			}
			kv, err := Parse(in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(kv, wantKV) {
				t.Errorf("Parse:\n got %q\nwant %q", kv, wantKV)
			}

			var wantD map[string]string
			if err := json.Unmarshal(dist, &wantD); err != nil {
				t.Fatal(err)
			}
			for k, v := range diverge[name] {
				wantD[k] = v
			}
			d, err := scanOne(t, "etc/os-release", in)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var gotD map[string]string
			if err := json.Unmarshal(b, &gotD); err != nil {
				t.Fatal(err)
			}
			for k, v := range gotD { // claircore omits empty fields
				if v == "" {
					delete(gotD, k)
				}
			}
			if !reflect.DeepEqual(gotD, wantD) {
				t.Errorf("Distribution:\n got %v\nwant %v", gotD, wantD)
			}
		})
	}
}

// TestDebianVersion checks the etc/debian_version fallback on the corpus's
// debian_version files (anchore/syft and aquasecurity/trivy test data).
func TestDebianVersion(t *testing.T) {
	tests := []struct {
		file string
		want *report.Distribution
	}{
		{"syft_debian-with-point-release_debian_version", &report.Distribution{
			DID: "debian", Name: "Debian GNU/Linux", Version: "13 (trixie)", VersionID: "13",
			VersionCodeName: "trixie", PrettyName: "Debian GNU/Linux 13 (trixie)",
		}},
		{"trivy_debian_9_debian_version", &report.Distribution{
			DID: "debian", Name: "Debian GNU/Linux", Version: "9 (stretch)", VersionID: "9",
			VersionCodeName: "stretch", PrettyName: "Debian GNU/Linux 9 (stretch)",
		}},
		{"trivy_debian_sid_debian_version", nil}, // "buster/sid": not a release
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f := scannertest.FromDisk(t, "etc/debian_version", fixtures.Path(t, "osrelease/"+tt.file))
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{f})
			if err != nil {
				t.Fatal(err)
			}
			var got *report.Distribution
			if len(res.Distributions) > 0 {
				got = res.Distributions[0]
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	// A number without a known codename.
	d := FromDebianVersion([]byte("42.1\n"))
	if d == nil || d.VersionID != "42" || d.Version != "42" || d.VersionCodeName != "" || d.PrettyName != "Debian GNU/Linux 42" {
		t.Errorf("FromDebianVersion(42.1) = %+v", d)
	}
	for _, s := range []string{"", "\n", "trixie/sid", "12.x", "1 2", "\x00"} {
		if d := FromDebianVersion([]byte(s)); d != nil {
			t.Errorf("FromDebianVersion(%q) = %+v, want nil", s, d)
		}
	}
}

func TestMatch(t *testing.T) {
	for p, want := range map[string]bool{
		"etc/os-release":                           true,
		"usr/lib/os-release":                       true,
		"etc/debian_version":                       true,
		"etc/lsb-release":                          true,
		"etc/redhat-release":                       true,
		"etc/system-release-cpe":                   true,
		"etc/redhat-release.rpmnew":                false,
		"os-release":                               false,
		"x/etc/os-release":                         false,
		"etc/os-release.orig":                      false,
		"usr/etc/os-release":                       false,
		"/etc/os-release":                          false,
		"var/lib/dpkg/status.d/base-files":         true,
		"var/lib/dpkg/status.d/base-files.md5sums": false,
		"var/lib/dpkg/status.d/sub/base-files":     false,
		"var/lib/dpkg/status":                      false,
	} {
		if got := (Scanner{}).Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
	info := Scanner{}.Info()
	if info.Name != "os-release" || info.Version != "3" || info.Kind != scanner.KindDistribution {
		t.Errorf("Info() = %+v", info)
	}
}

// TestPreference checks which file wins when a layer has several. The
// contents are corpus files (quay/claircore test data).
func TestPreference(t *testing.T) {
	read := func(name string) []byte {
		return scannertest.ReadFixture(t, "osrelease/"+name)
	}
	deb12 := read("claircore_debian-12_os-release")
	deb11 := read("claircore_debian-11_os-release")
	tests := []struct {
		name  string
		files []scanner.File
		want  string // VersionID, "" for none
	}{
		{"none", nil, ""},
		{"etc over usr/lib", []scanner.File{
			scannertest.File("usr/lib/os-release", deb11),
			scannertest.File("etc/os-release", deb12),
		}, "12"},
		{"usr/lib alone", []scanner.File{scannertest.File("usr/lib/os-release", deb11)}, "11"},
		{"empty etc falls through", []scanner.File{
			scannertest.File("etc/os-release", []byte("# nothing here\n\n")),
			scannertest.File("usr/lib/os-release", deb11),
		}, "11"},
		{"os-release over debian_version", []scanner.File{
			scannertest.File("etc/debian_version", []byte("10.13\n")),
			scannertest.File("usr/lib/os-release", deb12),
		}, "12"},
		{"debian_version alone", []scanner.File{scannertest.File("etc/debian_version", []byte("10.13\n"))}, "10"},
		{"empty os-release alone", []scanner.File{scannertest.File("etc/os-release", nil)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Scanner{}.Scan(context.Background(), tt.files)
			if err != nil {
				t.Fatal(err)
			}
			if res == nil {
				t.Fatal("nil result")
			}
			got := ""
			if len(res.Distributions) > 1 {
				t.Fatalf("%d distributions", len(res.Distributions))
			}
			if len(res.Distributions) == 1 {
				got = res.Distributions[0].VersionID
			}
			if got != tt.want {
				t.Errorf("VersionID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"plain", "ID=debian\nVERSION_ID=12\n", map[string]string{"ID": "debian", "VERSION_ID": "12"}},
		{"no final newline", "ID=debian", map[string]string{"ID": "debian"}},
		{"crlf", "ID=debian\r\nNAME=\"Debian\"\r\n", map[string]string{"ID": "debian", "NAME": "Debian"}},
		{"comments and blanks", "# c\n\n   \n\t# indented\nID=x\n", map[string]string{"ID": "x"}},
		{"indented", "   ID=x\n\tNAME=\"y\"  \n", map[string]string{"ID": "x", "NAME": "y"}},
		{"empty values", "A=\nB=\"\"\nC=''\n", map[string]string{"A": "", "B": "", "C": ""}},
		{"double-quote escapes", "A=\"a \\\"b\\\" \\\\ \\$x \\`c\\`\"\n", map[string]string{"A": "a \"b\" \\ $x `c`"}},
		{"double-quote other backslash kept", `A="a\nb\'c"`, map[string]string{"A": `a\nb\'c`}},
		{"single quotes literal", `A='a \"b $c'`, map[string]string{"A": `a \"b $c`}},
		{"unquoted escapes", `A=a\ b\"c\\d`, map[string]string{"A": `a b"c\d`}},
		{"concatenation", `A="a b"'c d'e`, map[string]string{"A": "a bc de"}},
		// As systemd: no comments after a value, blanks after a quote dropped.
		{"no trailing comments", "A=\"x\" # comment\nB=y\t#c\n", map[string]string{"A": "x# comment", "B": "y\t#c"}},
		{"unquoted blanks kept, trailing ones dropped", "NAME=Debian GNU/Linux  \t\n", map[string]string{"NAME": "Debian GNU/Linux"}},
		{"escaped trailing blank kept", "A=x\\ \n", map[string]string{"A": "x "}},
		{"quotes literal after unquoted text", "A=a \"b\"\nB=a\"b\"\n", map[string]string{"A": `a "b"`, "B": `a"b"`}},
		{"blank after quote", "A=\"x\"  'y'\n", map[string]string{"A": "xy"}},
		{"semicolon comment", "; c\nA=1\n", map[string]string{"A": "1"}},
		{"hash inside word", "A=x#y\n", map[string]string{"A": "x#y"}},
		{"blank around =", "A = \"x\"\n", map[string]string{"A": "x"}},
		{"last wins", "A=1\nA=2\n", map[string]string{"A": "2"}},
		{"utf-8", "NAME=\"Débian ☃\"\n", map[string]string{"NAME": "Débian ☃"}},
		{"trailing blank in quotes kept", "VERSION=\"15.1 \"\n", map[string]string{"VERSION": "15.1 "}},
		{"empty", "", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBadInput checks that malformed files are errors that name the file and
// the line, and never panic.
func TestBadInput(t *testing.T) {
	redhatRelease := scannertest.ReadFixture(t, "osrelease/claircore_rhel-releasefiles-7_redhat-release") // quay/claircore
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"redhat-release contents", redhatRelease, "line 1: not an assignment"},
		{"NUL", []byte("ID=x\nNAME=\x00\n"), "line 2: NUL byte"},
		{"binary junk", []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0}, "line 1: NUL byte"},
		{"invalid UTF-8", []byte("ID=x\nNAME=\"\xff\xfe\"\n"), "line 2: invalid UTF-8"},
		{"control character", []byte("ID=\x1b[31m\n"), "line 1: control character"},
		{"CR inside a line", []byte("ID=a\rb\n"), "line 1: control character"},
		{"huge line", []byte("ID=x\nNAME=\"" + strings.Repeat("a", MaxLineLen) + "\"\n"), "line 2: longer than"},
		{"unterminated double quote", []byte("NAME=\"Debian\n"), "line 1: NAME: unterminated double-quoted"},
		{"unterminated single quote", []byte("NAME='Debian\n"), "line 1: NAME: unterminated single-quoted"},
		{"trailing backslash", []byte("NAME=Debian\\\n"), "line 1: NAME: backslash at end of line"},
		{"escape at end of quotes", []byte("NAME=\"Debian\\\n"), "line 1: NAME: unterminated double-quoted"},
		{"bad key", []byte("1D=x\n"), "line 1: invalid variable name"},
		{"key with blank", []byte("export ID=x\n"), "line 1: invalid variable name"},
		{"empty key", []byte("=x\n"), "line 1: invalid variable name"},
		{"no =", []byte("ID\n"), "line 1: not an assignment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
				_, err := scanOne(t, p, tt.in)
				if err == nil {
					t.Fatalf("%s: no error", p)
				}
				if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: error %q does not name the file and contain %q", p, err, tt.want)
				}
			}
		})
	}
}

func TestLimits(t *testing.T) {
	scannertest.CheckFailures(t, scannertest.Failures{Scanner: Scanner{}, Path: "etc/os-release", Limit: MaxFileSize, Valid: []byte("ID=x\n"), Filler: []byte("A")})
	scannertest.CheckFailures(t, scannertest.Failures{Scanner: Scanner{}, Path: "usr/lib/os-release", Limit: MaxFileSize, Valid: []byte("ID=x\n"), Filler: []byte("A")})
}

// TestDistroless checks the detection of distroless Debian from status.d.
// The status.d stanzas are the base-files entries as Debian ships them
// (dpkg -s base-files on Debian 10, 11, 12 and 13) in the one-file-per-
// package form distroless images use; the libsqlite3-0 file is anchore/syft
// test data (image-distroless-deb, Apache-2.0), which has no base-files.
func TestDistroless(t *testing.T) {
	baseFiles := func(version string) []byte {
		return []byte("Package: base-files\nEssential: yes\nPriority: required\nSection: admin\n" +
			"Installed-Size: 340\nMaintainer: Santiago Vila <sanvila@debian.org>\nArchitecture: amd64\n" +
			"Multi-Arch: foreign\nVersion: " + version + "\nReplaces: base, dpkg (<= 1.15.0), miscutils\n" +
			"Provides: base\nPre-Depends: awk\nBreaks: booted-system\nDescription: Debian base system miscellaneous files\n")
	}
	sqlite := readFixtureFile(t, "dpkg/syft_status.d_libsqlite3-0")
	deb12 := scannertest.ReadFixture(t, "osrelease/claircore_debian-12_os-release")
	tests := []struct {
		name  string
		files []scanner.File
		want  string // VersionID/codename, "" for none
	}{
		{"bookworm", []scanner.File{scannertest.File("var/lib/dpkg/status.d/base-files", baseFiles("12.4+deb12u5"))}, "12/bookworm"},
		{"bullseye", []scanner.File{scannertest.File("var/lib/dpkg/status.d/base-files", baseFiles("11.1+deb11u9"))}, "11/bullseye"},
		{"buster", []scanner.File{scannertest.File("var/lib/dpkg/status.d/base-files", baseFiles("10.3+deb10u13"))}, "10/buster"},
		{"trixie", []scanner.File{scannertest.File("var/lib/dpkg/status.d/base-files", baseFiles("13.8"))}, "13/trixie"},
		{"entry under another file name", []scanner.File{
			scannertest.File("var/lib/dpkg/status.d/libsqlite3-0", sqlite),
			scannertest.File("var/lib/dpkg/status.d/base", baseFiles("12.4+deb12u5")),
		}, "12/bookworm"},
		{"no base-files", []scanner.File{scannertest.File("var/lib/dpkg/status.d/libsqlite3-0", sqlite)}, ""},
		{"ubuntu base-files", []scanner.File{scannertest.File("var/lib/dpkg/status.d/base-files", baseFiles("12ubuntu4.6"))}, ""},
		{"mismatched update suffix", []scanner.File{scannertest.File("var/lib/dpkg/status.d/base-files", baseFiles("12.4+deb11u1"))}, ""},
		{"not a status file", []scanner.File{scannertest.File("var/lib/dpkg/status.d/base-files", []byte("\x00"))}, ""},
		{"not installed", []scanner.File{scannertest.File("var/lib/dpkg/status.d/base-files",
			append([]byte("Status: deinstall ok config-files\n"), baseFiles("12.4+deb12u5")...))}, ""},
		{"installed, CRLF", []scanner.File{scannertest.File("var/lib/dpkg/status.d/base-files",
			bytes.ReplaceAll(append([]byte("Status: install ok installed\n"), baseFiles("12.4+deb12u5")...), []byte("\n"), []byte("\r\n")))}, "12/bookworm"},
		{"os-release wins", []scanner.File{
			scannertest.File("var/lib/dpkg/status.d/base-files", baseFiles("11.1+deb11u9")),
			scannertest.File("etc/os-release", deb12),
		}, "12/bookworm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Scanner{}.Scan(context.Background(), tt.files)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(res.Distributions) > 1 {
				t.Fatalf("%d distributions", len(res.Distributions))
			}
			if len(res.Distributions) == 1 {
				d := res.Distributions[0]
				got = d.VersionID + "/" + d.VersionCodeName
				if d.DID != "debian" || d.Name != "Debian GNU/Linux" || d.PrettyName == "" {
					t.Errorf("distribution %+v", d)
				}
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func readFixtureFile(t *testing.T, rel string) []byte {
	t.Helper()
	return scannertest.ReadFixture(t, rel)
}
