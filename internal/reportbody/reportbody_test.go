package reportbody

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
)

// fixtureReports reads the real index reports of the fixtures.
func fixtureReports(tb testing.TB) map[string]*report.Report { return fixtures.ClairReports(tb) }

// A stored answer is the JSON of the answer encoded for a request, gzip
// compressed, with the same entity tag, and its JSON's length.
func TestEncodeStored(t *testing.T) {
	reports := fixtureReports(t)
	reports["empty"] = report.NewReport(report.Digest("sha256:"+strings.Repeat("0", 64)), report.StateIndexFinished)
	var c Compressor // one for every answer, as the store keeps one
	for name, r := range reports {
		for _, view := range []string{ViewClair, ViewClairPartial, ViewNative} {
			plain, err := Encode(r, view)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := c.EncodeStored(r, view)
			if err != nil {
				t.Fatal(err)
			}
			again, err := c.Gzip(plain)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range []Body{stored, again} {
				zr, err := gzip.NewReader(bytes.NewReader(b.Data))
				if err != nil {
					t.Fatalf("%s %s: %v", name, view, err)
				}
				got, err := io.ReadAll(zr)
				if err != nil {
					t.Fatalf("%s %s: %v", name, view, err)
				}
				if !bytes.Equal(got, plain.Data) || b.Encoding != EncodingGzip || b.IdentitySize != int64(len(plain.Data)) ||
					b.ETag != plain.ETag || b.View != view || plain.Encoding != EncodingIdentity || plain.IdentitySize != int64(len(plain.Data)) {
					t.Fatalf("%s %s: stored %s answer of %d bytes (JSON %d, ETag %s), want the %d bytes of the JSON (ETag %s)",
						name, view, b.Encoding, len(got), b.IdentitySize, b.ETag, len(plain.Data), plain.ETag)
				}
			}
			if _, err := c.Gzip(stored); err == nil {
				t.Fatalf("%s %s: an answer compressed twice", name, view)
			}
		}
	}
}

// BenchmarkCompress measures what storing answers compressed costs on the
// job path, per real report: encoding the JSON alone ("json"), encoding it
// into gzip at each level with a compressor made per answer (gzip-3:
// klauspost/compress's stateless compression, which needs none; gzip5 at
// GzipLevel), and as the store does ("stored": GzipLevel, its compressor
// reused by a Compressor), with the compressed size as a fraction of the
// JSON's ("ratio").
//
//	go test -run '^$' -bench Compress -benchtime 200x ./internal/reportbody/
func BenchmarkCompress(b *testing.B) {
	for name, r := range fixtureReports(b) {
		plain, err := Encode(r, ViewClair)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/%dKB/json", name, len(plain.Data)>>10), func(b *testing.B) {
			for b.Loop() {
				if _, err := Encode(r, ViewClair); err != nil {
					b.Fatal(err)
				}
			}
		})
		ratio := func(b *testing.B, n int) { b.ReportMetric(float64(n)/float64(len(plain.Data)), "ratio") }
		for _, level := range []int{gzip.StatelessCompression, 1, 5, 9} {
			b.Run(fmt.Sprintf("%s/%dKB/gzip%d", name, len(plain.Data)>>10, level), func(b *testing.B) {
				var out bytes.Buffer
				for b.Loop() {
					out.Reset()
					zw, err := gzip.NewWriterLevel(&out, level)
					if err != nil {
						b.Fatal(err)
					}
					if err := encodeView(zw, r, ViewClair); err != nil {
						b.Fatal(err)
					}
					if err := zw.Close(); err != nil {
						b.Fatal(err)
					}
				}
				ratio(b, out.Len())
			})
		}
		b.Run(fmt.Sprintf("%s/%dKB/stored", name, len(plain.Data)>>10), func(b *testing.B) {
			var c Compressor
			var out Body
			for b.Loop() {
				if out, err = c.EncodeStored(r, ViewClair); err != nil {
					b.Fatal(err)
				}
			}
			ratio(b, len(out.Data))
		})
	}
}
