package webhooks

import (
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
)

// checkPayload holds for whatever a parser accepts: every target names a
// registry and a repository, a valid digest or a tag, and only valid layer
// digests; every ignored event has a reason. The handler relies on it.
func checkPayload(t *testing.T, p *payload, err error) {
	t.Helper()
	if err != nil {
		if p != nil {
			t.Fatalf("a payload and an error: %+v, %v", p, err)
		}
		if err.Error() == "" {
			t.Fatal("an error without a message")
		}
		return
	}
	if p == nil {
		t.Fatal("no payload and no error")
	}
	if len(p.Targets) == 0 && len(p.Ignored) == 0 {
		t.Fatal("nothing to index and nothing ignored: the answer would say nothing")
	}
	for _, tg := range p.Targets {
		if tg.Registry == "" || tg.Repository == "" {
			t.Fatalf("target without registry or repository: %+v", tg)
		}
		if tg.Digest == "" && tg.Tag == "" {
			t.Fatalf("target with neither digest nor tag: %+v", tg)
		}
		if tg.Digest != "" {
			if _, err := report.ParseDigest(string(tg.Digest)); err != nil {
				t.Fatalf("target digest: %v", err)
			}
		}
		if len(tg.Layers) > report.MaxLayers {
			t.Fatalf("%d layers", len(tg.Layers))
		}
		for _, l := range tg.Layers {
			if _, err := report.ParseDigest(string(l.Digest)); err != nil {
				t.Fatalf("layer digest: %v", err)
			}
		}
		// What the handler does next must not panic either.
		if it, err := newItem("registry.example.com", tg); err == nil && it.ref == "" {
			t.Fatal("an item without a reference")
		}
	}
	for _, r := range p.Ignored {
		if strings.TrimSpace(r) == "" {
			t.Fatal("an ignored event without a reason")
		}
	}
}

func FuzzParseDistribution(f *testing.F) {
	for _, s := range []string{distributionV2Push, distributionV1Pull, distributionV3IndexWithRefs, `{"events":[]}`, `{}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseDistribution(body)
		checkPayload(t, p, err)
	})
}

func FuzzParseHarbor(f *testing.F) {
	for _, s := range []string{harborDefaultPush, harborCloudEventsPush, harborCloudEventsPull, `{"type":"PUSH_ARTIFACT","event_data":{"resources":[]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseHarbor(body)
		checkPayload(t, p, err)
	})
}

func FuzzParseQuay(f *testing.F) {
	for _, s := range []string{quayRepoPush, quayRepoPushLegacy, quayBuildQueued, `{"docker_url":"q/a","updated_tags":{"":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseQuay(body)
		checkPayload(t, p, err)
	})
}

func FuzzParseZot(f *testing.F) {
	f.Add("application/json", "zotregistry.image.updated", "zotregistry.dev", []byte(zotImageUpdatedData()), "zot.example.com")
	f.Add("application/json", "zotregistry.image.deleted", "https://zot.example.com", []byte(`{"name":"a"}`), "")
	f.Add("application/cloudevents+json", "", "", []byte(`{"type":"zotregistry.image.updated","source":"https://z","data":`+zotImageUpdatedData()+`}`), "")
	f.Fuzz(func(t *testing.T, contentType, ceType, ceSource string, body []byte, defaultHost string) {
		p, err := parseZot(contentType, ceType, ceSource, body, defaultHost)
		checkPayload(t, p, err)
	})
}

func FuzzParseGHCR(f *testing.F) {
	f.Add("package", "application/json", []byte(ghcrPackagePublished))
	f.Add("package", "application/json", []byte(ghcrNpmPublished))
	f.Add("ping", "application/json", []byte(ghcrPing))
	f.Add("registry_package", "application/x-www-form-urlencoded", []byte("payload=%7B%7D"))
	f.Fuzz(func(t *testing.T, event, contentType string, body []byte) {
		p, err := parseGHCR(event, contentType, body)
		checkPayload(t, p, err)
	})
}

func FuzzRegistries(f *testing.F) {
	for _, s := range []string{"registry.example.com", "localhost:5000=registry.localhost:5000,127.0.0.1:5000=registry.localhost:5000", "https://h/", "a=b,a=c", ""} {
		f.Add(s, "localhost:5000")
	}
	f.Fuzz(func(t *testing.T, list, host string) {
		r, err := ParseRegistries(list)
		if err != nil {
			return
		}
		if pull, ok := r.PullHost(host); ok {
			if _, ok := r.PullHost(pull); !ok {
				t.Fatalf("pull host %q of %q is not itself allowed", pull, host)
			}
		}
		again, err := ParseRegistries(r.String())
		if err != nil || again.String() != r.String() {
			t.Fatalf("round trip of %q: %q, %v", r.String(), again.String(), err)
		}
	})
}
