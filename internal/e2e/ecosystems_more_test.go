package e2e_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/internal/sbom"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/internal/testing/sbomcheck"
	"github.com/stevedore-dev/stevedore/report"
)

// scannerData reads a file of a scanner package's testdata (real files of
// upstream projects' test data; see that directory's SOURCES.md).
func scannerData(t *testing.T, pkg, name string) []byte {
	t.Helper()
	root := filepath.Dir(filepath.Dir(filepath.Dir(fixtures.Path(t, "SOURCES.md"))))
	b, err := os.ReadFile(filepath.Join(root, "scanner", pkg, "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkSBOM exports m's report in both SBOM formats through the API and
// checks them against the schemas and the native report (sbomcheck), and
// that every package of the report has a purl that parses.
func (h *harness) checkSBOM(t *testing.T, check *sbomcheck.Checker, m *report.Manifest) {
	t.Helper()
	a := h.do("GET", "/api/v1/reports/"+string(m.Hash), nil, nil)
	if a.status != http.StatusOK {
		t.Fatalf("native report: %d %s", a.status, a.body)
	}
	rep := new(report.Report)
	if err := json.Unmarshal(a.body, rep); err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Packages {
		if _, err := packageurl.FromString(p.PURL); err != nil {
			t.Errorf("package %s %s: purl %q: %v", p.Name, p.Version, p.PURL, err)
		}
	}
	get := func(format string) []byte {
		a := h.do("GET", "/api/v1/reports/"+string(m.Hash)+"/sbom?format="+format, nil, nil)
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", format, a.status, a.body)
		}
		return a.body
	}
	sbomcheck.CheckSPDX(t, rep, check.SPDX(t, get(sbom.FormatSPDXJSON)))
	sbomcheck.CheckCycloneDX(t, rep, check.CycloneDX(t, get(sbom.FormatCycloneDXJSON)))
}

// TestMoreLanguageEcosystems indexes one image per ecosystem added for
// issue 14 through the real pipeline (registry -> API -> JetStream ->
// worker -> Postgres), built from upstream projects' test data (Trivy,
// Syft, osv-scalibr; see scanner/*/testdata/SOURCES.md), compares the
// stored report with what the files say, and checks its SBOM exports.
func TestMoreLanguageEcosystems(t *testing.T) {
	check := sbomcheck.New(t)
	withSBOM := func(f func(*testing.T, *harness, *sbomcheck.Checker)) func(*testing.T, *harness) {
		return func(t *testing.T, h *harness) { f(t, h, check) }
	}
	runEcosystems(t,
		ecosystemCheck{"rust", withSBOM(checkRust)},
		ecosystemCheck{"dotnet", withSBOM(checkDotnet)},
		ecosystemCheck{"composer", withSBOM(checkComposer)},
		ecosystemCheck{"python-egg", withSBOM(checkPythonEgg)},
		ecosystemCheck{"conda", withSBOM(checkConda)},
	)
}

// checkRust indexes cargo-auditable executables and a Cargo.lock, one executable owned by a Debian package.
func checkRust(t *testing.T, h *harness, check *sbomcheck.Checker) {
	// A cargo-auditable executable, a Cargo.lock, and a
	// cargo-auditable executable that a Debian package owns (its
	// crates are the OS package's, not reported again).
	dpkgList := []byte("/.\n/usr\n/usr/bin\n/usr/bin/no_deps\n")
	m := h.pushTars("rust:1",
		[]tarFile{
			{"var/lib/dpkg/status", 0o644, fixture(t, "dpkg/syft_image-dpkg_status")},
			{"var/lib/dpkg/info/libpam-runtime.list", 0o644, dpkgList},
			{"usr/bin/no_deps", 0o755, scannerData(t, "rust", "scalibr_no_deps")},
		},
		[]tarFile{
			{"usr/local/bin/crate_with_features", 0o755, scannerData(t, "rust", "trivy_executable_rust")},
			{"srv/app/Cargo.lock", 0o644, scannerData(t, "rust", "scalibr_two-packages-with-local.lock")},
			{"usr/local/bin/not-executable", 0o644, scannerData(t, "rust", "scalibr_uses_serde_json")},
		})
	bin, lock := "usr/local/bin/crate_with_features 1", "srv/app/Cargo.lock 1"
	want := []string{
		"addr2line 0.15.2 pkg:cargo/addr2line@0.15.2 " + lock,
		"crate_with_features 0.1.0 pkg:cargo/crate_with_features@0.1.0 " + bin,
		"libpam-runtime 1.1.8-3.6 pkg:deb/debian/libpam-runtime@1.1.8-3.6?arch=all var/lib/dpkg/status 0",
		"library_crate 0.1.0 pkg:cargo/library_crate@0.1.0 " + bin,
		"local-rust-pkg 0.1.0 pkg:cargo/local-rust-pkg@0.1.0 " + lock,
	}
	h.checkReported(t, m, want)
	h.checkSBOM(t, check, m)
}

// checkDotnet indexes .deps.json files: a framework-dependent application,
// a self-contained one and one that a Debian package owns.
func checkDotnet(t *testing.T, h *harness, check *sbomcheck.Checker) {
	// A framework-dependent application and a self-contained one
	// (its bundled runtime is reported as the NuGet runtime pack),
	// and a deps.json that a Debian package owns (not reported).
	owned := "usr/lib/dotnet/shared/ExampleApp1/ExampleApp1.deps.json"
	m := h.pushTars("dotnet:1",
		[]tarFile{
			{"app/TestLibrary.deps.json", 0o644, scannerData(t, "dotnet", "syft_TestLibrary.deps.json")},
			{"var/lib/dpkg/status", 0o644, fixture(t, "dpkg/syft_image-dpkg_status")},
			{"var/lib/dpkg/info/libpam-runtime.list", 0o644, []byte("/" + owned + "\n")},
			{owned, 0o644, scannerData(t, "dotnet", "trivy_happy.deps.json")},
		},
		[]tarFile{{"opt/example/ExampleApp1.deps.json", 0o644, scannerData(t, "dotnet", "trivy_self-contained.deps.json")}})
	lib, ex := "app/TestLibrary.deps.json 0", "opt/example/ExampleApp1.deps.json 1"
	want := []string{
		"AWSSDK.Core 3.7.10.6 pkg:nuget/AWSSDK.Core@3.7.10.6 " + lib,
		"ExampleApp1 1.0.0 pkg:nuget/ExampleApp1@1.0.0 " + ex,
		"Microsoft.AspNetCore.App.Runtime.linux-x64 8.0.0 pkg:nuget/Microsoft.AspNetCore.App.Runtime.linux-x64@8.0.0 " + ex,
		"Microsoft.Extensions.DependencyInjection 6.0.0 pkg:nuget/Microsoft.Extensions.DependencyInjection@6.0.0 " + lib,
		"Microsoft.Extensions.DependencyInjection.Abstractions 6.0.0 pkg:nuget/Microsoft.Extensions.DependencyInjection.Abstractions@6.0.0 " + lib,
		"Microsoft.Extensions.Logging 6.0.0 pkg:nuget/Microsoft.Extensions.Logging@6.0.0 " + lib,
		"Microsoft.Extensions.Logging.Abstractions 6.0.0 pkg:nuget/Microsoft.Extensions.Logging.Abstractions@6.0.0 " + lib,
		"Microsoft.Extensions.Options 6.0.0 pkg:nuget/Microsoft.Extensions.Options@6.0.0 " + lib,
		"Microsoft.Extensions.Primitives 6.0.0 pkg:nuget/Microsoft.Extensions.Primitives@6.0.0 " + lib,
		"Microsoft.NETCore.App.Runtime.linux-x64 8.0.0 pkg:nuget/Microsoft.NETCore.App.Runtime.linux-x64@8.0.0 " + ex,
		"Newtonsoft.Json 13.0.1 pkg:nuget/Newtonsoft.Json@13.0.1 " + lib,
		"Newtonsoft.Json 13.0.1 pkg:nuget/Newtonsoft.Json@13.0.1 " + ex,
		"Serilog 2.10.0 pkg:nuget/Serilog@2.10.0 " + lib,
		"Serilog.Sinks.Console 4.0.1 pkg:nuget/Serilog.Sinks.Console@4.0.1 " + lib,
		"TestCommon 1.0.0 pkg:nuget/TestCommon@1.0.0 " + lib,
		"TestLibrary 1.0.0 pkg:nuget/TestLibrary@1.0.0 " + lib,
		"libpam-runtime 1.1.8-3.6 pkg:deb/debian/libpam-runtime@1.1.8-3.6?arch=all var/lib/dpkg/status 0",
	}
	h.checkReported(t, m, want)
	h.checkSBOM(t, check, m)
}

// checkComposer indexes Composer 1's and 2's installed.json.
func checkComposer(t *testing.T, h *harness, check *sbomcheck.Checker) {
	// Composer 1's and 2's installed.json in two applications.
	m := h.pushTars("composer:1", []tarFile{
		{"var/www/html/vendor/composer/installed.json", 0o644, scannerData(t, "composer", "trivy_integration_installed.json")},
		{"srv/legacy/vendor/composer/installed.json", 0o644, scannerData(t, "composer", "syft_composer_1_installed.json")},
	})
	www, legacy := "var/www/html/vendor/composer/installed.json 0", "srv/legacy/vendor/composer/installed.json 0"
	want := []string{
		"asm89/stack-cors 1.3.0 pkg:composer/asm89/stack-cors@1.3.0 " + legacy,
		"behat/mink v1.8.1 pkg:composer/behat/mink@v1.8.1 " + legacy,
		"guzzlehttp/psr7 1.8.3 pkg:composer/guzzlehttp/psr7@1.8.3 " + www,
		"psr/http-message 1.1 pkg:composer/psr/http-message@1.1 " + www,
		"ralouphie/getallheaders 3.0.3 pkg:composer/ralouphie/getallheaders@3.0.3 " + www,
	}
	h.checkReported(t, m, want)
	h.checkSBOM(t, check, m)
}

// checkPythonEgg indexes zipped eggs, one of them owned by a Debian package.
func checkPythonEgg(t *testing.T, h *harness, check *sbomcheck.Checker) {
	// Zipped eggs, one of them in a site-packages that a Debian
	// package owns (reported by dpkg only), one without
	// EGG-INFO/PKG-INFO (skipped with a warning).
	sp := "usr/lib/python2.7/site-packages/"
	dpkgList := []byte("/usr/lib/python2.7/site-packages/scalibr_monotonic-1.6-py3.10.egg\n")
	m := h.pushTars("egg:1", []tarFile{
		{"var/lib/dpkg/status", 0o644, fixture(t, "dpkg/syft_image-dpkg_status")},
		{"var/lib/dpkg/info/libpam-runtime.list", 0o644, dpkgList},
		{sp + "kitchen-1.2.6-py2.7.egg", 0o644, scannerData(t, "python", "trivy_kitchen-1.2.6-py2.7.egg")},
		{sp + "scalibr_monotonic-1.6-py3.10.egg", 0o644, scannerData(t, "python", "scalibr_monotonic-1.6-py3.10.egg")},
		{sp + "no-required-files.egg", 0o644, scannerData(t, "python", "trivy_no-required-files.egg")},
	})
	want := []string{
		"kitchen 1.2.6 pkg:pypi/kitchen@1.2.6 " + sp + "kitchen-1.2.6-py2.7.egg 0",
		"libpam-runtime 1.1.8-3.6 pkg:deb/debian/libpam-runtime@1.1.8-3.6?arch=all var/lib/dpkg/status 0",
	}
	h.checkReported(t, m, want)
	h.checkSBOM(t, check, m)
}

// checkConda indexes the conda-meta records of two environments.
func checkConda(t *testing.T, h *harness, check *sbomcheck.Checker) {
	// A base environment and a named one, in two layers.
	m := h.pushTars("conda:1",
		[]tarFile{{"opt/conda/conda-meta/_libgcc_mutex-0.1-main.json", 0o644, scannerData(t, "conda", "trivy__libgcc_mutex-0.1-main.json")}},
		[]tarFile{
			{"opt/conda/envs/testenv/conda-meta/openssl-1.1.1q-h7f8727e_0.json", 0o644, scannerData(t, "conda", "trivy_openssl-1.1.1q-h7f8727e_0.json")},
			{"opt/conda/envs/testenv/conda-meta/pip-22.2.2-py38h06a4308_0.json", 0o644, scannerData(t, "conda", "trivy_pip-22.2.2-py38h06a4308_0.json")},
			{"opt/conda/envs/testenv/conda-meta/history", 0o644, []byte("==> 2022-09-01 <==\n")},
		})
	env := "opt/conda/envs/testenv/conda-meta/"
	want := []string{
		"_libgcc_mutex 0.1 pkg:conda/_libgcc_mutex@0.1?build=main&channel=main&subdir=linux-64&type=conda opt/conda/conda-meta/_libgcc_mutex-0.1-main.json 0",
		"openssl 1.1.1q pkg:conda/openssl@1.1.1q?build=h7f8727e_0&channel=main&subdir=linux-64&type=conda " + env + "openssl-1.1.1q-h7f8727e_0.json 1",
		"pip 22.2.2 pkg:conda/pip@22.2.2?build=py38h06a4308_0&channel=main&subdir=linux-64&type=conda " + env + "pip-22.2.2-py38h06a4308_0.json 1",
	}
	h.checkReported(t, m, want)
	h.checkSBOM(t, check, m)
}
