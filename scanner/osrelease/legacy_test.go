package osrelease

import (
	"context"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// Release files from claircore, syft and trivy test data (Apache-2.0; see
// testdata/fixtures/SOURCES.md), each alone in a layer without os-release.
func TestLegacyReleaseFiles(t *testing.T) {
	for _, tc := range []struct {
		fixture, path              string
		did, versionID, code, name string
	}{
		{"claircore_rhel-releasefiles-7_redhat-release", redhatRelease, "rhel", "7.4", "maipo", "Red Hat Enterprise Linux Server"},
		{"trivy_redhat_6_redhat-release", redhatRelease, "rhel", "", "", ""},
		{"syft_centos5_redhat-release", redhatRelease, "centos", "5.7", "final", "CentOS"},
		{"trivy_centos_centos-release", centosRelease, "centos", "", "", ""},
		{"syft_almalinux-from-redhat-release_redhat-release", redhatRelease, "almalinux", "8.10", "cerulean leopard", "AlmaLinux"},
		{"trivy_alma_almalinux-release", almaRelease, "almalinux", "", "", ""},
		{"syft_rockylinux-from-redhat-release_redhat-release", redhatRelease, "rocky", "", "", ""},
		{"trivy_rocky_rocky-release", rockyRelease, "rocky", "", "", ""},
		{"claircore_rhel-releasefiles-oracle-6_oracle-release", oracleRelease, "ol", "6.10", "", "Oracle Linux Server"},
		{"trivy_oracle_7_oracle-release", oracleRelease, "ol", "", "", ""},
		{"trivy_fedora_29_fedora-release", fedoraRelease, "fedora", "29", "", ""},
		{"trivy_alpine-310_alpine-release", alpineRelease, "alpine", "3.10.4", "", "Alpine Linux"},
		{"claircore_ubuntu-18.04_lsb-release", lsbRelease, "ubuntu", "18.04", "bionic", "Ubuntu"},
		{"claircore_ubuntu-10.04_lsb-release", lsbRelease, "ubuntu", "10.04", "lucid", "Ubuntu"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			data := scannertest.ReadFixture(t, "osrelease/"+tc.fixture)
			res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File(tc.path, data)})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Distributions) != 1 {
				t.Fatalf("%q: %d distributions", data, len(res.Distributions))
			}
			d := res.Distributions[0]
			if d.DID != tc.did || (tc.versionID != "" && d.VersionID != tc.versionID) ||
				(tc.code != "" && d.VersionCodeName != tc.code) || (tc.name != "" && d.Name != tc.name) || d.PrettyName == "" {
				t.Fatalf("%q: got %+v", data, d)
			}
		})
	}
}

func TestLegacyPreferenceAndCPE(t *testing.T) {
	read := func(name string) []byte {
		return scannertest.ReadFixture(t, "osrelease/"+name)
	}
	for _, tc := range []struct {
		name  string
		files []scanner.File
		did   string
		cpe   string
	}{
		{"oracle-release wins over redhat-release", []scanner.File{
			scannertest.File(redhatRelease, read("claircore_rhel-releasefiles-oracle-7_redhat-release")),
			scannertest.File(oracleRelease, read("claircore_rhel-releasefiles-oracle-7_oracle-release"))}, "ol", ""},
		{"os-release wins over redhat-release", []scanner.File{
			scannertest.File(redhatRelease, read("claircore_rhel-releasefiles-8_redhat-release")),
			scannertest.File(etcOSRelease, read("claircore_rhel-releasefiles-8_os-release"))}, "rhel", "cpe:/o:redhat:enterprise_linux:8.1:GA"},
		{"system-release-cpe gives the CPE", []scanner.File{
			scannertest.File(redhatRelease, []byte("CentOS release 6.10 (Final)\n")),
			scannertest.File(systemReleaseCPE, read("syft_centos6_system-release-cpe"))}, "centos", "cpe:/o:centos:linux:6:GA"},
		{"an unknown release line is no distribution", []scanner.File{
			scannertest.File(redhatRelease, []byte("Some Linux release 1.0\n"))}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Scanner{}.Scan(context.Background(), tc.files)
			if err != nil {
				t.Fatal(err)
			}
			if tc.did == "" {
				if len(res.Distributions) != 0 {
					t.Fatalf("got %+v", res.Distributions[0])
				}
				return
			}
			if len(res.Distributions) != 1 || res.Distributions[0].DID != tc.did || (tc.cpe != "" && res.Distributions[0].CPE != tc.cpe) {
				t.Fatalf("got %+v", res.Distributions)
			}
		})
	}
}

func FuzzReleaseLine(f *testing.F) {
	f.Add([]byte("Red Hat Enterprise Linux Server release 7.4 (Maipo)\n"))
	f.Add([]byte("CentOS release 5.7 (Final)"))
	f.Add([]byte("3.10.4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if d := FromReleaseLine(data); d != nil && (d.DID == "" || d.VersionID == "") {
			t.Fatalf("%q: incomplete %+v", data, d)
		}
		if d := FromAlpineRelease(data); d != nil && d.VersionID == "" {
			t.Fatalf("%q: incomplete %+v", data, d)
		}
	})
}
