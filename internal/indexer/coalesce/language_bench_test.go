package coalesce

import (
	"fmt"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
)

// BenchmarkCoalesceLanguage measures the claircore form of language
// packages: an image of 500 dpkg packages and 5,000 language packages (npm,
// Python, Go) coalesced with their package URLs ("claircore-form") and
// without (no ecosystem: the pass finds nothing to do). Compare the two as a
// ratio:
//
//	go test -run '^$' -bench CoalesceLanguage -count 5 ./internal/indexer/coalesce/
func BenchmarkCoalesceLanguage(b *testing.B) {
	build := func(purls bool) []Layer {
		var os, lang []*report.Package
		for i := range 500 {
			os = append(os, &report.Package{Name: fmt.Sprintf("lib%d", i), Version: "1.2-3", Kind: report.KindBinary,
				PackageDB: "var/lib/dpkg/status", Source: &report.Package{Name: fmt.Sprintf("src%d", i), Version: "1.2-3", Kind: report.KindSource}})
		}
		for i := range 5000 {
			var name, version, file, purl string
			switch i % 3 {
			case 0:
				name, version = fmt.Sprintf("pkg%d", i), fmt.Sprintf("%d.%d.%d", i%7, i%11, i%13)
				file = "app/node_modules/" + name + "/package.json"
				purl = "pkg:npm/" + name + "@" + version
			case 1:
				name, version = fmt.Sprintf("Py%d", i), fmt.Sprintf("%d.%d.post%d", i%7, i%11, i%3)
				file = "usr/lib/python3/site-packages/" + name + ".dist-info/METADATA"
				purl = "pkg:pypi/" + name + "@" + version
			default:
				name, version = fmt.Sprintf("example.com/m%d", i), fmt.Sprintf("v0.%d.%d", i%11, i%13)
				file = fmt.Sprintf("usr/bin/app%d", i%20)
				purl = "pkg:golang/" + name + "@" + version
			}
			if !purls {
				purl = ""
			}
			lang = append(lang, &report.Package{Name: name, Version: version, Kind: report.KindBinary, PackageDB: file, Filepath: file, PURL: purl})
		}
		return []Layer{
			{Digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111", Packages: os,
				Distributions: []*report.Distribution{{DID: "debian", VersionID: "12"}}},
			{Digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222", Packages: lang},
		}
	}
	for _, bc := range []struct {
		name  string
		purls bool
	}{{"no-ecosystem", false}, {"claircore-form", true}} {
		layers := build(bc.purls)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Coalesce("sha256:0000000000000000000000000000000000000000000000000000000000000000", layers)
			}
		})
	}
}
