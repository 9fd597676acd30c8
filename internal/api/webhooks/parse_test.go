package webhooks

import (
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
)

func dg(c string) report.Digest { return report.Digest("sha256:" + strings.Repeat(c, 64)) }

// parsed is what a parser case expects: targets without their layers
// (checked by layer count) and how many events were ignored.
type parsed struct {
	targets []target
	layers  []int
	ignored int
}

func check(t *testing.T, p *payload, err error, want parsed, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error %v, want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var layers []int
	var got []target
	for _, tg := range p.Targets {
		layers = append(layers, len(tg.Layers))
		tg.Layers = nil
		got = append(got, tg)
	}
	if !reflect.DeepEqual(got, want.targets) {
		t.Errorf("targets\n got %+v\nwant %+v", got, want.targets)
	}
	if want.layers != nil && !reflect.DeepEqual(layers, want.layers) {
		t.Errorf("layer counts %v, want %v", layers, want.layers)
	}
	if len(p.Ignored) != want.ignored {
		t.Errorf("ignored %q, want %d", p.Ignored, want.ignored)
	}
	for _, reason := range p.Ignored {
		if reason == "" {
			t.Error("empty ignore reason")
		}
	}
}

func TestParseDistribution(t *testing.T) {
	const dockerV2 = "application/vnd.docker.distribution.manifest.v2+json"
	for _, tc := range []struct {
		name, body string
		want       parsed
		err        string
	}{
		{"v2 doc example: manifest push and two blob pushes", distributionV2Push, parsed{
			targets: []target{{Registry: "example.com", Repository: "library/test", Digest: "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf", MediaType: dockerV2}},
			layers:  []int{0}, ignored: 2}, ""},
		{"v1 doc example: a pull", distributionV1Pull, parsed{ignored: 1}, ""},
		{"references: image with layers, index, attestation", distributionV3IndexWithRefs, parsed{
			targets: []target{
				{Registry: "registry.local:5000", Repository: "team/app", Digest: dg("1"), MediaType: "application/vnd.oci.image.manifest.v1+json"},
				{Registry: "registry.local:5000", Repository: "team/app", Digest: dg("5"), Tag: "1.0", MediaType: "application/vnd.oci.image.index.v1+json"},
			},
			layers: []int{2, 0}, ignored: 1}, ""},
		{"request host when no url", `{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + string(dg("a")) + `","repository":"r"},"request":{"host":"localhost:5000"}}]}`,
			parsed{targets: []target{{Registry: "localhost:5000", Repository: "r", Digest: dg("a"), MediaType: "application/vnd.oci.image.index.v1+json"}}}, ""},
		{"delete carries digest and repository only", `{"events":[{"action":"delete","target":{"digest":"` + string(dg("a")) + `","repository":"library/test"}}]}`, parsed{ignored: 1}, ""},
		{"schema1 manifest", `{"events":[{"action":"push","target":{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws","digest":"` + string(dg("a")) + `","repository":"r","url":"http://h/v2/r/manifests/x"}}]}`, parsed{ignored: 1}, ""},
		{"empty envelope", `{"events":[]}`, parsed{ignored: 1}, ""},
		{"not an envelope", `{"type":"PUSH_ARTIFACT"}`, parsed{}, `"events": missing`},
		{"invalid JSON", `{"events":[{]}`, parsed{}, "invalid JSON at byte"},
		{"truncated", `{"events":[`, parsed{}, "ends early"},
		{"empty body", ``, parsed{}, "empty body"},
		{"two documents", `{"events":[]} {}`, parsed{}, "more than one JSON document"},
		{"bad digest", `{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:abc","repository":"r","url":"http://h/v2/r/manifests/x"}}]}`, parsed{}, "events[0].target.digest"},
		{"no repository", `{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + string(dg("a")) + `","url":"http://h/v2/r/manifests/x"}}]}`, parsed{}, "target.repository: missing"},
		{"no host", `{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + string(dg("a")) + `","repository":"r"}}]}`, parsed{}, "no registry host"},
		{"wrong type", `{"events":{"action":"push"}}`, parsed{}, `field "events"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseDistribution([]byte(tc.body))
			check(t, p, err, tc.want, tc.err)
		})
	}
}

func TestDistributionContentTypes(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/vnd.docker.distribution.events.v1+json":                true,
		"application/vnd.docker.distribution.events.v2+json":                true,
		"application/vnd.docker.distribution.events.v2+json; charset=utf-8": true,
		"application/vnd.docker.distribution.events.v3+json":                true, // lenient: by prefix
		"application/json": true,
		"text/plain":       false,
		"application/vnd.docker.distribution.events.v1+xml": false,
		"": false,
	} {
		if got, _ := acceptsContentType(Distribution, mediaType(ct)); got != want {
			t.Errorf("%q: %v, want %v", ct, got, want)
		}
	}
}

func TestParseHarbor(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       parsed
		err        string
	}{
		{"default format push", harborDefaultPush, parsed{targets: []target{{Registry: "hub.harbor.com", Repository: "test-webhook/debian", Digest: "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8", Tag: "latest"}}}, ""},
		{"cloudevents push by digest", harborCloudEventsPush, parsed{targets: []target{{Registry: "harbor.dev", Repository: "library/busybox", Digest: "sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"}}}, ""},
		{"cloudevents pull", harborCloudEventsPull, parsed{ignored: 1}, ""},
		{"default format pull", strings.Replace(harborDefaultPush, "PUSH_ARTIFACT", "PULL_ARTIFACT", 1), parsed{ignored: 1}, ""},
		{"scan completed", `{"type":"SCANNING_COMPLETED","occur_at":1,"operator":"auto","event_data":{}}`, parsed{ignored: 1}, ""},
		{"host with port, no repo_full_name", `{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"digest":"` + string(dg("b")) + `","tag":"v1","resource_url":"harbor.example.com:8443/proj/app:v1"}],"repository":{}}}`,
			parsed{targets: []target{{Registry: "harbor.example.com:8443", Repository: "proj/app", Digest: dg("b"), Tag: "v1"}}}, ""},
		{"no resources", `{"type":"PUSH_ARTIFACT","event_data":{"resources":[],"repository":{}}}`, parsed{ignored: 1}, ""},
		{"no type", `{"event_data":{}}`, parsed{}, `"type": missing`},
		{"no event_data", `{"type":"PUSH_ARTIFACT"}`, parsed{}, `"event_data": missing`},
		{"bad digest", `{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"digest":"md5:x","resource_url":"h/p/a:1"}]}}`, parsed{}, "event_data.resources[0].digest"},
		{"bad resource url", `{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"digest":"` + string(dg("b")) + `","resource_url":"nohost"}]}}`, parsed{}, "resource_url"},
		{"invalid JSON", `{"type": PUSH_ARTIFACT}`, parsed{}, "invalid JSON at byte 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseHarbor([]byte(tc.body))
			check(t, p, err, tc.want, tc.err)
		})
	}
}

func TestParseQuay(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       parsed
		err        string
	}{
		{"documented repo push", quayRepoPush, parsed{targets: []target{{Registry: "quay.io", Repository: "dgangaia/test", Tag: "latest"}}}, ""},
		{"legacy updated_tags object", quayRepoPushLegacy, parsed{targets: []target{{Registry: "quay.io", Repository: "devtable/ubuntu", Tag: "latest"}}}, ""},
		{"two tags, self-hosted with port", `{"docker_url":"quay.example.com:8443/org/app","updated_tags":["1.0","latest"]}`,
			parsed{targets: []target{{Registry: "quay.example.com:8443", Repository: "org/app", Tag: "1.0"}, {Registry: "quay.example.com:8443", Repository: "org/app", Tag: "latest"}}}, ""},
		{"build queued is not a push", quayBuildQueued, parsed{ignored: 1}, ""},
		{"no tags", `{"docker_url":"quay.io/a/b","updated_tags":[]}`, parsed{ignored: 1}, ""},
		{"no docker_url", `{"updated_tags":["x"]}`, parsed{}, `"docker_url": missing`},
		{"bad tags", `{"docker_url":"quay.io/a/b","updated_tags":"latest"}`, parsed{}, "want a list of tags"},
		{"empty tag", `{"docker_url":"quay.io/a/b","updated_tags":[""]}`, parsed{}, "empty tag"},
		{"invalid JSON", `{"docker_url":`, parsed{}, "ends early"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseQuay([]byte(tc.body))
			if err == nil {
				sort.Slice(p.Targets, func(i, j int) bool { return p.Targets[i].Tag < p.Targets[j].Tag })
			}
			check(t, p, err, tc.want, tc.err)
		})
	}
}

func TestParseZot(t *testing.T) {
	oci := "application/vnd.oci.image.manifest.v1+json"
	d := report.Digest(zotManifestDigest())
	structured := `{"specversion":"1.0","id":"1","source":"https://zot.example.com:5000","type":"zotregistry.image.updated","datacontenttype":"application/json","data":` + zotImageUpdatedData() + `}`
	for _, tc := range []struct {
		name, ct, ceType, ceSource, body, defaultHost string
		want                                          parsed
		err                                           string
	}{
		{"binary image.updated with its manifest", "application/json", "zotregistry.image.updated", "zotregistry.dev", zotImageUpdatedData(), "zot.example.com:5000",
			parsed{targets: []target{{Registry: "zot.example.com:5000", Repository: "library/alpine", Digest: d, Tag: "3.20", MediaType: oci}}, layers: []int{1}}, ""},
		{"manifest does not hash to the digest: looked up instead", "application/json", "zotregistry.image.updated", "zotregistry.dev", strings.Replace(zotImageUpdatedData(), "3408729", "3408730", 1), "zot.example.com",
			parsed{targets: []target{{Registry: "zot.example.com", Repository: "library/alpine", Digest: d, Tag: "3.20", MediaType: oci}}, layers: []int{0}}, ""},
		{"custom type prefix, host from the source URL", "application/json", "com.example.registry.image.updated", "https://registry.example.com", zotImageUpdatedData(), "",
			parsed{targets: []target{{Registry: "registry.example.com", Repository: "library/alpine", Digest: d, Tag: "3.20", MediaType: oci}}}, ""},
		{"structured mode", "application/cloudevents+json", "", "", structured, "",
			parsed{targets: []target{{Registry: "zot.example.com:5000", Repository: "library/alpine", Digest: d, Tag: "3.20", MediaType: oci}}}, ""},
		{"pushed by digest", "application/json", "zotregistry.image.updated", "", `{"name":"a","reference":"` + string(dg("c")) + `","digest":"` + string(dg("c")) + `","mediaType":"application/vnd.oci.image.index.v1+json"}`, "z:5000",
			parsed{targets: []target{{Registry: "z:5000", Repository: "a", Digest: dg("c"), MediaType: "application/vnd.oci.image.index.v1+json"}}}, ""},
		{"image deleted", "application/json", "zotregistry.image.deleted", "zotregistry.dev", `{"name":"a","reference":"1","digest":"` + string(dg("c")) + `","mediaType":"` + oci + `"}`, "z", parsed{ignored: 1}, ""},
		{"repository created", "application/json", "zotregistry.repository.created", "zotregistry.dev", `{"name":"a"}`, "z", parsed{ignored: 1}, ""},
		{"an artifact", "application/json", "zotregistry.image.updated", "", `{"name":"a","reference":"1","digest":"` + string(dg("c")) + `","mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip"}`, "z", parsed{ignored: 1}, ""},
		{"no registry", "application/json", "zotregistry.image.updated", "zotregistry.dev", zotImageUpdatedData(), "", parsed{}, "STEVEDORE_WEBHOOK_ZOT_REGISTRY"},
		{"no Ce-Type", "application/json", "", "", zotImageUpdatedData(), "z", parsed{}, "Ce-Type: missing"},
		{"bad digest", "application/json", "zotregistry.image.updated", "", `{"name":"a","digest":"sha256:x","mediaType":"` + oci + `"}`, "z", parsed{}, "data.digest"},
		{"no name", "application/json", "zotregistry.image.updated", "", `{"digest":"` + string(dg("c")) + `","mediaType":"` + oci + `"}`, "z", parsed{}, "data.name"},
		{"invalid JSON", "application/json", "zotregistry.image.updated", "", `{"name":}`, "z", parsed{}, "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseZot(tc.ct, tc.ceType, tc.ceSource, []byte(tc.body), tc.defaultHost)
			check(t, p, err, tc.want, tc.err)
		})
	}
}

func TestParseGHCR(t *testing.T) {
	d := report.Digest("sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498")
	form := "payload=" + url.QueryEscape(ghcrPackagePublished)
	for _, tc := range []struct {
		name, event, ct, body string
		want                  parsed
		err                   string
	}{
		{"container published", "package", "application/json", ghcrPackagePublished,
			parsed{targets: []target{{Registry: "ghcr.io", Repository: "codertocat/hello-world", Digest: d, Tag: "latest", MediaType: "application/vnd.docker.distribution.manifest.v2+json"}}, layers: []int{2}}, ""},
		{"form encoded", "package", "application/x-www-form-urlencoded", form,
			parsed{targets: []target{{Registry: "ghcr.io", Repository: "codertocat/hello-world", Digest: d, Tag: "latest", MediaType: "application/vnd.docker.distribution.manifest.v2+json"}}}, ""},
		{"updated", "package", "application/json", strings.Replace(ghcrPackagePublished, `"published"`, `"updated"`, 1),
			parsed{targets: []target{{Registry: "ghcr.io", Repository: "codertocat/hello-world", Digest: d, Tag: "latest", MediaType: "application/vnd.docker.distribution.manifest.v2+json"}}}, ""},
		{"older registry_package event", "registry_package", "application/json", strings.Replace(ghcrPackagePublished, `"package":`, `"registry_package":`, 1),
			parsed{targets: []target{{Registry: "ghcr.io", Repository: "codertocat/hello-world", Digest: d, Tag: "latest", MediaType: "application/vnd.docker.distribution.manifest.v2+json"}}}, ""},
		{"no package_url", "package", "application/json", strings.Replace(ghcrPackagePublished, `"package_url": "ghcr.io/Codertocat/hello-world:latest"`, `"package_url": ""`, 1),
			parsed{targets: []target{{Registry: "ghcr.io", Repository: "codertocat/hello-world", Digest: d, Tag: "latest", MediaType: "application/vnd.docker.distribution.manifest.v2+json"}}}, ""},
		{"npm package", "package", "application/json", ghcrNpmPublished, parsed{ignored: 1}, ""},
		{"deleted", "package", "application/json", strings.Replace(ghcrPackagePublished, `"published"`, `"deleted"`, 1), parsed{ignored: 1}, ""},
		{"ping", "ping", "application/json", ghcrPing, parsed{ignored: 1}, ""},
		{"push event", "push", "application/json", `{"ref":"refs/heads/main"}`, parsed{ignored: 1}, ""},
		{"no event header", "", "application/json", ghcrPackagePublished, parsed{}, "X-GitHub-Event: missing"},
		{"no package", "package", "application/json", `{"action":"published"}`, parsed{}, `"package": missing`},
		{"no digest", "package", "application/json", `{"action":"published","package":{"package_type":"CONTAINER","package_version":{"name":"v1"}}}`, parsed{}, "no manifest digest"},
		{"form without payload", "package", "application/x-www-form-urlencoded", "a=b", parsed{}, `"payload" missing`},
		{"invalid JSON", "package", "application/json", `{"action":"published",}`, parsed{}, "invalid JSON at byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseGHCR(tc.event, tc.ct, []byte(tc.body))
			check(t, p, err, tc.want, tc.err)
		})
	}
}

func TestSplitImageRef(t *testing.T) {
	for in, want := range map[string][4]string{
		"hub.harbor.com/test-webhook/debian:latest":     {"hub.harbor.com", "test-webhook/debian", "latest", ""},
		"harbor.dev/library/busybox@" + string(dg("d")): {"harbor.dev", "library/busybox", "", string(dg("d"))},
		"h:5000/a/b:1@" + string(dg("d")):               {"h:5000", "a/b", "1", string(dg("d"))},
		"ghcr.io/Codertocat/hello-world:":               {"ghcr.io", "Codertocat/hello-world", "", ""},
		"quay.io/ns/repo":                               {"quay.io", "ns/repo", "", ""},
		"https://quay.io/ns/repo":                       {"quay.io", "ns/repo", "", ""},
	} {
		h, r, tag, d, err := splitImageRef(in)
		if err != nil || [4]string{h, r, tag, d} != want {
			t.Errorf("%q: %q %q %q %q %v, want %q", in, h, r, tag, d, err, want)
		}
	}
	for _, bad := range []string{"", "nohost", "/repo", "host/", "0/:x", "h/@" + string(dg("d")), "h/a b", "h/a//b"} {
		if _, _, _, _, err := splitImageRef(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
