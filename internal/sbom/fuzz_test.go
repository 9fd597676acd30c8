package sbom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/stevedore-dev/stevedore/internal/sbom"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
)

// FuzzEncode exports arbitrary reports (a stored report is JSON the
// process did not necessarily write itself): no panic; what Encode accepts
// it writes as a document the format's own library reads back, the same
// bytes every time.
func FuzzEncode(f *testing.F) {
	for _, r := range []*report.Report{stevedoreReport(false), stevedoreReport(true)} {
		b, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	b, err := os.ReadFile(fixtures.Path(f, "reports/claircore_clair-rhel8-v3.5.5-4-indexreport.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep := new(report.Report)
		if json.Unmarshal(raw, rep) != nil {
			return
		}
		for _, format := range sbom.Formats {
			var out bytes.Buffer
			if err := sbom.Encode(context.Background(), &out, rep, format, sbom.Options{}); err != nil {
				if out.Len() != 0 {
					t.Fatalf("%s: error %v after writing %d bytes", format, err, out.Len())
				}
				continue
			}
			var again bytes.Buffer
			if err := sbom.Encode(context.Background(), &again, rep, format, sbom.Options{}); err != nil || !bytes.Equal(out.Bytes(), again.Bytes()) {
				t.Fatalf("%s: a second export differs (%v)", format, err)
			}
			switch format {
			case sbom.FormatSPDXJSON:
				if _, err := spdxjson.Read(bytes.NewReader(out.Bytes())); err != nil {
					t.Fatalf("tools-golang cannot read the export: %v\n%s", err, out.Bytes())
				}
			case sbom.FormatCycloneDXJSON:
				if err := cdx.NewBOMDecoder(bytes.NewReader(out.Bytes()), cdx.BOMFileFormatJSON).Decode(new(cdx.BOM)); err != nil {
					t.Fatalf("cyclonedx-go cannot read the export: %v\n%s", err, out.Bytes())
				}
			}
		}
	})
}
