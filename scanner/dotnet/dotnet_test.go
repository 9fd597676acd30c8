package dotnet

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

func TestInfoMatch(t *testing.T) {
	scannertest.CheckInfoMatch(t, Scanner{}, scanner.Info{Name: "dotnet", Version: "1", Kind: scanner.KindPackage, MatchVersion: "1"}, map[string]bool{
		"app/MyApp.deps.json": true,
		"usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/Microsoft.NETCore.App.deps.json": true,
		"MyApp.deps.json":              true,
		"app/.deps.json":               false,
		"app/MyApp.runtimeconfig.json": false,
		"app/MyApp.deps.json.bak":      false,
		"app/packages.lock.json":       false,
	})
}

// TestFixtures scans upstream projects' test data (testdata/SOURCES.md)
// and compares with what those projects' own tests expect.
func TestFixtures(t *testing.T) {
	const path = "app/MyApp.deps.json"
	scannertest.CheckTestdata(t, Scanner{}, []scannertest.Testdata{
		// Trivy pkg/dependency/parser/dotnet/core_deps/parse_test.go.
		{File: "trivy_happy.deps.json", Path: path, Want: []string{"ExampleApp1 1.0.0", "Newtonsoft.Json 13.0.1"}},
		{File: "trivy_without-runtime.deps.json", Path: path, Want: []string{"JsonDiffPatch 2.0.61", "Libuv 1.9.1", "System.Collections.Immutable 1.3.0", "hello2 1.0.0"}},
		{File: "trivy_self-contained.deps.json", Path: path, Want: []string{"ExampleApp1 1.0.0", "Microsoft.AspNetCore.App.Runtime.linux-x64 8.0.0", "Microsoft.NETCore.App.Runtime.linux-x64 8.0.0", "Newtonsoft.Json 13.0.1"}},
		{File: "trivy_multi-project.deps.json", Path: path, Want: []string{"Api 1.0.0", "Data 1.0.0", "Newtonsoft.Json 13.0.3", "Web 1.0.0"}},
		// Trivy pkg/fanal/analyzer/language/dotnet/deps/deps_test.go:
		// no target for the runtime target's name, so every library.
		{File: "trivy_datacollector.deps.json", Path: path, Want: []string{"Microsoft.VisualStudio.TestPlatform.Common 17.2.0-release-20220408-11", "Newtonsoft.Json 9.0.1"}},
		// osv-scalibr extractor/filesystem/language/dotnet/depsjson.
		{File: "scalibr_valid.deps.json", Path: path, Want: []string{"AWSSDK.Core 3.7.10.6", "Microsoft.Extensions.DependencyInjection 6.0.0", "TestLibrary 1.0.0"}},
		// Syft syft/pkg/cataloger/dotnet/cataloger_test.go expects 14:
		// these and System.Diagnostics.DiagnosticSource 6.0.0 and
		// System.Runtime.CompilerServices.Unsafe 6.0.0, which have no
		// runtime assets in the net6.0 target (the shared framework
		// has them): not deployed, left out as Trivy does.
		{File: "syft_TestLibrary.deps.json", Path: path, Want: []string{
			"AWSSDK.Core 3.7.10.6",
			"Microsoft.Extensions.DependencyInjection 6.0.0",
			"Microsoft.Extensions.DependencyInjection.Abstractions 6.0.0",
			"Microsoft.Extensions.Logging 6.0.0",
			"Microsoft.Extensions.Logging.Abstractions 6.0.0",
			"Microsoft.Extensions.Options 6.0.0",
			"Microsoft.Extensions.Primitives 6.0.0",
			"Newtonsoft.Json 13.0.1",
			"Serilog 2.10.0",
			"Serilog.Sinks.Console 4.0.1",
			"TestCommon 1.0.0",
			"TestLibrary 1.0.0",
		}},
	}, func(t *testing.T, p *report.Package) string {
		if p.PURL != "pkg:nuget/"+p.Name+"@"+p.Version {
			t.Errorf("package %+v", p)
		}
		return p.Name + " " + p.Version
	})
}

func TestParseDeps(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       []string
		err        string
	}{
		{"types", `{"libraries":{"A/1":{"type":"Package"},"B/2":{"type":"reference"},"runtimepack.R/3":{"type":"runtimepack"},"P/4":{"type":"project"}}}`,
			[]string{"A 1", "P 4", "R 3"}, ""},
		{"empty assets", `{"runtimeTarget":{"name":"t"},"targets":{"t":{"A/1":{"runtime":{}},"B/2":{"native":{"x.so":{}}},"C/3":{"runtimeTargets":[]},"D/4":5}},"libraries":{"A/1":{"type":"package"},"B/2":{"type":"package"},"C/3":{"type":"package"},"D/4":{"type":"package"}}}`,
			[]string{"B 2"}, ""},
		{"no libraries", `{}`, nil, ""},
		{"not json", `{"libraries":`, nil, "not a deps.json"},
		{"libraries not an object", `{"libraries":[]}`, nil, "not a deps.json"},
		{"no slash", `{"libraries":{"A":{"type":"package"}}}`, nil, "not NAME/VERSION"},
		{"empty version", `{"libraries":{"A/":{"type":"package"}}}`, nil, "version: empty"},
		{"blank in name", `{"libraries":{"A B/1":{"type":"package"}}}`, nil, "blanks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			libs, err := ParseDeps([]byte(tc.json))
			if tc.err != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want a ParseError with %q", err, tc.err)
				}
				return
			}
			var got []string
			for _, l := range libs {
				got = append(got, l.Name+" "+l.Version)
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// Bad files are skipped with a warning naming them; the others are still
// reported. Only a failure to open or read is an error.
func TestBadInput(t *testing.T) {
	valid := []byte(`{"libraries":{"X/1.0.0":{"type":"package"}}}`)
	good := scannertest.File("a/Good.deps.json", valid)
	scannertest.CheckBadFiles(t, Scanner{}, good, "X", "b/Bad.deps.json", []scannertest.BadFile{
		{Name: "not json", Data: `{"libraries":{"X":`},
	})
	scannertest.CheckSkips(t, scannertest.Skips{Scanner: Scanner{}, Path: "a/X.deps.json", Limit: MaxFileSize, Valid: valid})
}
