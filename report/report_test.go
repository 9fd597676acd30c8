package report_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
)

func TestParseDigest(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"sha256:" + strings.Repeat("a", 64), true},
		{"sha512:" + strings.Repeat("0", 128), true},
		{"sha256:" + strings.Repeat("A", 64), false},
		{"sha256:" + strings.Repeat("a", 63), false},
		{"md5:" + strings.Repeat("a", 32), false},
		{"", false},
		{strings.Repeat("a", 64), false},
	} {
		d, err := report.ParseDigest(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseDigest(%q) = %v, %v", tc.in, d, err)
		}
		if tc.ok && (d.Algorithm()+":"+d.Hex() != tc.in) {
			t.Errorf("%q split as %q %q", tc.in, d.Algorithm(), d.Hex())
		}
	}
}

func TestManifestValidate(t *testing.T) {
	d := report.Digest("sha256:" + strings.Repeat("a", 64))
	layer := func(uri string) *report.Layer { return &report.Layer{Hash: d, URI: uri} }
	withHeaders := func(h http.Header) *report.Layer { return &report.Layer{Hash: d, URI: "https://r/x", Headers: h} }
	many := make([]*report.Layer, report.MaxLayers+1)
	for i := range many {
		many[i] = layer("https://r/x")
	}
	for _, tc := range []struct {
		name string
		m    *report.Manifest
		want string
	}{
		{"ok", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("https://r/v2/x/blobs/" + string(d))}}, ""},
		{"nil", nil, "missing"},
		{"bad hash", &report.Manifest{Hash: "x", Layers: []*report.Layer{layer("https://r")}}, "manifest hash"},
		{"no layers", &report.Manifest{Hash: d}, "no layers"},
		{"too many layers", &report.Manifest{Hash: d, Layers: many}, "more than the limit"},
		{"nil layer", &report.Manifest{Hash: d, Layers: []*report.Layer{nil}}, "layers[0]: missing"},
		{"bad layer hash", &report.Manifest{Hash: d, Layers: []*report.Layer{{Hash: "sha256:1", URI: "https://r"}}}, "layers[0].hash"},
		{"relative uri", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("/v2/x")}}, "layers[0].uri"},
		{"file uri", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("file:///etc/passwd")}}, "layers[0].uri"},
		{"uri with a space in the host", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("https://user:s3cret@r egistry/x")}}, "layers[0].uri: not a valid URI"},
		{"uri with a bad port", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("https://user:s3cret@registry:port/x")}}, "layers[0].uri: not a valid URI"},
		{"uri with a bad escape", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("https://registry/%zz")}}, "layers[0].uri: not a valid URI"},
		{"uri with an unclosed IPv6 host", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("https://[::1/x")}}, "layers[0].uri: not a valid URI"},
		{"uri without a host", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("https://:443/x")}}, "layers[0].uri: not a valid URI: no host"},
		{"uri with a NUL", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("https://user:s3cret@r/x\x00y")}}, "layers[0].uri: control character 0x00 at byte 23"},
		{"uri with a newline", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("https://r/x\ny")}}, "layers[0].uri: control character 0x0a"},
		{"uri with DEL", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("https://r/x\x7f")}}, "layers[0].uri: control character 0x7f"},
		{"ok headers", &report.Manifest{Hash: d, Layers: []*report.Layer{withHeaders(http.Header{"Authorization": {"Bearer s3cret"}, "X-Tab": {"a\tb"}})}}, ""},
		{"header value with CR LF", &report.Manifest{Hash: d, Layers: []*report.Layer{layer("https://r/x"), withHeaders(http.Header{"Authorization": {"Bearer s3cret\r\nX-Evil: 1"}})}}, `layers[1].headers["Authorization"][0]: the value holds a byte not allowed`},
		{"header value with LF", &report.Manifest{Hash: d, Layers: []*report.Layer{withHeaders(http.Header{"X-A": {"ok", "s3cret\n"}})}}, `layers[0].headers["X-A"][1]`},
		{"header value with NUL", &report.Manifest{Hash: d, Layers: []*report.Layer{withHeaders(http.Header{"X-A": {"s3cret\x00"}})}}, `layers[0].headers["X-A"][0]`},
		{"header name with a space", &report.Manifest{Hash: d, Layers: []*report.Layer{withHeaders(http.Header{"X A": {"s3cret"}})}}, `layers[0].headers["X A"]: not a valid header name`},
		{"header name with CR LF", &report.Manifest{Hash: d, Layers: []*report.Layer{withHeaders(http.Header{"X\r\nY": {"s3cret"}})}}, `not a valid header name`},
		{"empty header name", &report.Manifest{Hash: d, Layers: []*report.Layer{withHeaders(http.Header{"": {"s3cret"}})}}, `layers[0].headers[""]: not a valid header name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			// URIs and header values may hold credentials: an error
			// never quotes them.
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error %q quotes a secret", err)
			}
		})
	}
}

func TestStateTerminal(t *testing.T) {
	for s, want := range map[report.State]bool{
		report.StateCheckManifest: false, report.StateScanLayers: false, report.StateIndexManifest: false,
		report.StateIndexFinished: true, report.StateIndexError: true, report.StateIndexPartial: true,
	} {
		if s.Terminal() != want {
			t.Errorf("%s.Terminal() = %v", s, !want)
		}
	}
}
