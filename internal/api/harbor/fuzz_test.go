package harbor

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzScanRequest feeds arbitrary bodies to the scan request's validation
// and arbitrary ids to the id decoder: neither panics, a refusal never
// quotes the registry authorization, and an id that decodes re-encodes to
// itself (ids are made only by encode).
func FuzzScanRequest(f *testing.F) {
	f.Add([]byte(`{"registry": {"url": "https://core.harbor.domain", "authorization": "Basic cm9ib3Q6c2VjcmV0"},
"artifact": {"repository": "library/mongo", "digest": "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b", "tag": "3.14-xenial", "mime_type": "application/vnd.docker.distribution.manifest.v2+json"},
"enabled_capabilities": [{"type": "sbom", "produces_mime_types": ["application/vnd.security.sbom.report+json; version=1.0"], "parameters": {"sbom_media_types": ["application/spdx+json", "application/vnd.cyclonedx+json"]}}]}`), "s1.e30.AAAA")
	f.Add([]byte(`{"registry": {"url": "http://u:p@x/y?z", "authorization": "Bearer \r\nsecret"}, "artifact": {"repository": "../a", "digest": "sha256:zz"}}`), "")
	f.Add([]byte(`{"registry": {}, "artifact": {}, "enabled_capabilities": [{"type": "vulnerability"}, {"type": ""}]}`), "s1..")
	codec := newIDCodec("fuzz-token-of-some-length")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		var req ScanRequest
		if json.Unmarshal(body, &req) == nil {
			tgt, rerr := validate(&req)
			if rerr != nil && req.Registry != nil && len(req.Registry.Authorization) > 8 {
				if _, cred, ok := strings.Cut(req.Registry.Authorization, " "); ok && len(cred) > 8 && strings.Contains(rerr.msg, cred) {
					t.Fatalf("refusal %q quotes the authorization", rerr.msg)
				}
			}
			if rerr == nil {
				got, err := codec.encode(tgt.ref)
				if err != nil {
					t.Fatal(err)
				}
				back, err := codec.decode(got)
				if err != nil || back.Digest != tgt.ref.Digest {
					t.Fatalf("id %q: %v", got, err)
				}
			}
		}
		if ref, err := codec.decode(id); err == nil {
			again, _ := codec.encode(ref)
			if again != id {
				t.Fatalf("id %q decodes but re-encodes as %q", id, again)
			}
		}
	})
}
