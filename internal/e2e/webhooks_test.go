package e2e_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/stevedore-dev/stevedore/internal/api/webhooks"
	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

const (
	whToken  = "e2e-webhook-token-0123456789"
	whSecret = "e2e-ghcr-webhook-secret-0123456789"
)

// webhookConfig enables every source. The events name the test registry by
// other hosts too (push.example.com, harbor.example.com, ...), mapped to
// the registry the dispatcher pulls from, as an operator maps the address
// clients push to onto the one Stevedore reaches.
func (h *harness) webhookConfig(workers int) app.Config {
	h.t.Helper()
	cfg := h.config(workers, true)
	regs, err := webhooks.ParseRegistries(fmt.Sprintf("%[1]s,push.example.com=%[1]s,harbor.example.com=%[1]s,quay.example.com=%[1]s,ghcr.io=%[1]s", h.reg.Addr))
	if err != nil {
		h.t.Fatal(err)
	}
	cfg.Webhooks = webhooks.Config{
		Secrets: map[webhooks.Source]string{
			webhooks.Distribution: whToken, webhooks.Harbor: whToken, webhooks.Quay: whToken, webhooks.Zot: whToken, webhooks.GHCR: whSecret,
		},
		Registries:  regs,
		ZotRegistry: h.reg.Addr,
		MaxBodySize: 64 << 10,
		RetryBase:   200 * time.Millisecond,
		RetryMax:    time.Second,
	}
	return cfg
}

// pushed is an image in the test registry, as the events describe it.
type pushed struct {
	repo, tag string
	digest    report.Digest
	mediaType string
	raw       []byte
	manifest  *v1.Manifest
	// platforms are the digests to be indexed: the image itself, or each
	// platform manifest of an image index.
	platforms []report.Digest
}

// pushImage pushes an image made of one layer with an os-release and a
// dpkg database naming pkg, tagged repo:tag (and the other tags).
func (h *harness) pushImage(repo, tag, pkg string, tags ...string) *pushed {
	h.t.Helper()
	m := h.push(repo+":"+tag, map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus(pkg)})
	p := h.describe(repo, tag)
	if p.digest != m.Hash {
		h.t.Fatalf("pushed %s, registry says %s", m.Hash, p.digest)
	}
	p.platforms = []report.Digest{m.Hash}
	for _, t := range tags {
		ref, _ := name.ParseReference(h.reg.Ref(repo + ":" + tag))
		desc, err := remote.Get(ref)
		if err != nil {
			h.t.Fatal(err)
		}
		nt, _ := name.NewTag(h.reg.Ref(repo + ":" + t))
		if err := remote.Tag(nt, desc); err != nil {
			h.t.Fatal(err)
		}
	}
	return p
}

// pushOCI pushes an image with OCI media types (manifest, config, layer).
func (h *harness) pushOCI(repo, tag, pkg string) *pushed {
	h.t.Helper()
	l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus(pkg)})
	if err != nil {
		h.t.Fatal(err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: l, MediaType: types.OCILayer})
	if err != nil {
		h.t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		h.t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		h.t.Fatal(err)
	}
	ref, err := name.ParseReference(h.reg.Ref(repo + ":" + tag))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		h.t.Fatal(err)
	}
	p := h.describe(repo, tag)
	if p.mediaType != string(types.OCIManifestSchema1) {
		h.t.Fatalf("pushed %s", p.mediaType)
	}
	p.platforms = []report.Digest{p.digest}
	return p
}

// pushIndex pushes an image index of two platforms (linux/amd64 and
// linux/arm64), each with its own packages.
func (h *harness) pushIndex(repo, tag string) *pushed {
	h.t.Helper()
	var adds []mutate.IndexAddendum
	var platforms []report.Digest
	for _, arch := range []string{"amd64", "arm64"} {
		l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("libc6-" + arch + "-" + repo)})
		if err != nil {
			h.t.Fatal(err)
		}
		img, err := devregistry.Image(l)
		if err != nil {
			h.t.Fatal(err)
		}
		d, _ := img.Digest()
		platforms = append(platforms, report.Digest(d.String()))
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	ref, err := name.ParseReference(h.reg.Ref(repo + ":" + tag))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		h.t.Fatal(err)
	}
	p := h.describe(repo, tag)
	p.platforms = platforms
	return p
}

func (h *harness) describe(repo, tag string) *pushed {
	h.t.Helper()
	ref, _ := name.ParseReference(h.reg.Ref(repo + ":" + tag))
	desc, err := remote.Get(ref)
	if err != nil {
		h.t.Fatal(err)
	}
	p := &pushed{repo: repo, tag: tag, digest: report.Digest(desc.Digest.String()), mediaType: string(desc.MediaType), raw: desc.Manifest}
	if desc.MediaType.IsImage() {
		img, err := desc.Image()
		if err != nil {
			h.t.Fatal(err)
		}
		if p.manifest, err = img.Manifest(); err != nil {
			h.t.Fatal(err)
		}
	}
	return p
}

// --- payloads, as each registry writes them --------------------------------

// distributionEvent is one event of a Distribution notification envelope,
// as registry:3 writes it for a push through host.
func distributionEvent(host string, p *pushed, action string, withRefs bool) map[string]any {
	target := map[string]any{
		"mediaType":  p.mediaType,
		"digest":     p.digest,
		"size":       len(p.raw),
		"length":     len(p.raw),
		"repository": p.repo,
		"url":        fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, p.repo, p.digest),
		"tag":        p.tag,
	}
	if withRefs && p.manifest != nil {
		refs := []map[string]any{{"mediaType": p.manifest.Config.MediaType, "digest": p.manifest.Config.Digest.String(), "size": p.manifest.Config.Size}}
		for _, l := range p.manifest.Layers {
			refs = append(refs, map[string]any{"mediaType": l.MediaType, "digest": l.Digest.String(), "size": l.Size})
		}
		target["references"] = refs
	}
	return map[string]any{
		"id":        fmt.Sprintf("%s-%s-%s", action, p.repo, p.digest.Hex()[:8]),
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"action":    action,
		"target":    target,
		"request":   map[string]any{"id": "3b8f", "addr": "172.18.0.1:40112", "host": host, "method": "PUT", "useragent": "docker/27.3.1 go/go1.22.7"},
		"actor":     map[string]any{},
		"source":    map[string]any{"addr": "registry-7d9f:5000", "instanceID": "f7b1e0e2-5f0a-4c27-9a55-1f0c2b6e8d10"},
	}
}

func blobEvent(host, repo string, d v1.Hash, size int64) map[string]any {
	return map[string]any{
		"id": "blob-" + d.Hex[:8], "timestamp": time.Now().UTC().Format(time.RFC3339Nano), "action": "push",
		"target": map[string]any{
			"mediaType": "application/octet-stream", "digest": d.String(), "size": size, "length": size, "repository": repo,
			"url": fmt.Sprintf("http://%s/v2/%s/blobs/%s", host, repo, d),
		},
		"request": map[string]any{"id": "3b8e", "host": host, "method": "PUT"}, "actor": map[string]any{}, "source": map[string]any{"addr": "registry-7d9f:5000"},
	}
}

func envelope(events ...map[string]any) string {
	b, _ := json.MarshalIndent(map[string]any{"events": events}, "", "   ")
	return string(b)
}

func harborDefault(p *pushed, eventType string) string {
	return fmt.Sprintf(`{"type":%q,"occur_at":%d,"operator":"admin","event_data":{"resources":[{"digest":%q,"tag":%q,"resource_url":"harbor.example.com/%s:%s"}],"repository":{"date_created":1700000000,"name":%q,"namespace":"library","repo_full_name":%q,"repo_type":"private"}}}`,
		eventType, time.Now().Unix(), p.digest, p.tag, p.repo, p.tag, p.repo[strings.LastIndex(p.repo, "/")+1:], p.repo)
}

func harborCloudEvent(p *pushed) string {
	return fmt.Sprintf(`{"specversion":"1.0","requestid":"5b0e","id":"66e18103-09c1-41f6-982f-37df223f3eeb","source":"/projects/2/webhook/policies/15","type":"harbor.artifact.pushed","datacontenttype":"application/json","time":%q,"data":{"resources":[{"digest":%q,"tag":%q,"resource_url":"harbor.example.com/%s@%s"}],"repository":{"date_created":1700000000,"name":"x","namespace":"library","repo_full_name":%q,"repo_type":"private"}},"operator":"robot$ci"}`,
		time.Now().UTC().Format(time.RFC3339), p.digest, p.digest, p.repo, p.digest, p.repo)
}

func quayPush(p *pushed, tags ...string) string {
	b, _ := json.Marshal(map[string]any{
		"name": p.repo, "repository": "org/" + p.repo, "namespace": "org",
		"docker_url": "quay.example.com/" + p.repo, "homepage": "https://quay.example.com/repository/" + p.repo,
		"updated_tags": tags,
	})
	return string(b)
}

func zotData(p *pushed, withManifest bool) string {
	data := map[string]any{"name": p.repo, "reference": p.tag, "digest": p.digest, "mediaType": p.mediaType}
	if withManifest {
		data["manifest"] = string(p.raw)
	}
	b, _ := json.Marshal(data)
	return string(b)
}

func ghcrPackage(p *pushed, packageType string) string {
	meta := map[string]any{"tag": map[string]any{"name": p.tag, "digest": p.digest}, "labels": map[string]any{"description": ""}}
	if p.manifest != nil {
		var layers []map[string]any
		for _, l := range p.manifest.Layers {
			layers = append(layers, map[string]any{"digest": l.Digest.String(), "media_type": l.MediaType, "size": l.Size})
		}
		meta["manifest"] = map[string]any{
			"digest": p.digest, "media_type": p.mediaType, "size": len(p.raw),
			"config": map[string]any{"digest": p.manifest.Config.Digest.String(), "media_type": p.manifest.Config.MediaType, "size": p.manifest.Config.Size},
			"layers": layers,
		}
	}
	owner, pkgName, _ := strings.Cut(p.repo, "/")
	b, _ := json.MarshalIndent(map[string]any{
		"action": "published",
		"package": map[string]any{
			"id": 10696, "name": pkgName, "namespace": owner, "ecosystem": packageType, "package_type": packageType,
			"html_url": "https://github.com/" + owner + "/" + pkgName + "/packages/10696",
			"owner":    map[string]any{"login": strings.ToUpper(owner[:1]) + owner[1:], "id": 21031067, "type": "Organization"},
			"package_version": map[string]any{
				"id": 57755790, "version": p.digest, "name": p.digest, "summary": "", "manifest": "",
				"container_metadata": meta, "package_files": []any{},
				"installation_command": "docker pull ghcr.io/" + p.repo + ":" + p.tag,
				"package_url":          "ghcr.io/" + p.repo + ":" + p.tag,
			},
			"registry": map[string]any{"name": "GitHub CONTAINER registry", "type": "CONTAINER", "url": "https://CONTAINER.pkg.github.com/" + owner, "vendor": "GitHub Inc"},
		},
		"sender": map[string]any{"login": owner},
	}, "", "  ")
	return string(b)
}

func hubSignature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// post sends a webhook request and returns the status and the decoded
// answer.
func (h *harness) post(path string, header map[string]string, body string) (int, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.api.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("%s: HTTP %d, answer is not JSON: %q", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func distHeaders(mediaType string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + whToken, "Content-Type": mediaType, "User-Agent": "Go-http-client/1.1"}
}

const (
	eventsV1 = "application/vnd.docker.distribution.events.v1+json"
	eventsV2 = "application/vnd.docker.distribution.events.v2+json"
)

// TestWebhooksEndToEnd sends each source's payloads, as the registries
// write them, through the HTTP handler into the real pipeline (JetStream,
// Postgres, workers, the in-process registry): accepted events end with an
// indexed report of every platform, ignored ones are answered 200 and queue
// nothing, refused ones are answered 4xx and queue nothing.
func TestWebhooksEndToEnd(t *testing.T) {
	h := newHarness(t)
	h.start(h.webhookConfig(2))
	reg := h.reg.Addr
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("stevedore:"+whToken))

	cases := slices.Concat(distributionWebhookCases(h, reg), vendorWebhookCases(h, basicAuth), refusedWebhookCases(reg, basicAuth))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runWebhookCase(t, h, tc) })
	}
}

// webhookCase is one event posted to a webhook endpoint, and what must follow.
type webhookCase struct {
	name string
	// push makes the image the event is about.
	push   func(name string) *pushed
	path   string
	header func(p *pushed, body string) map[string]string
	body   func(p *pushed) string
	status int
	code   string // error code of a refusal
	// indexed: the platform manifests end IndexFinished; otherwise
	// nothing about the image may be queued.
	indexed bool
	// fromEvent: the job is built from the event's layer list, so the
	// registry serves no manifest after the event.
	fromEvent bool
}

// distributionWebhookCases are the events of a CNCF Distribution registry.
func distributionWebhookCases(h *harness, reg string) []webhookCase {
	return []webhookCase{
		{name: "distribution v2, Docker image manifest pushed to a mapped host",
			path: "/webhooks/distribution", header: func(*pushed, string) map[string]string { return distHeaders(eventsV2) },
			body:   func(p *pushed) string { return envelope(distributionEvent("push.example.com", p, "push", false)) },
			status: 202, indexed: true},
		{name: "distribution v1 envelope: blob pushes, the manifest push and a pull",
			path: "/webhooks/distribution", header: func(*pushed, string) map[string]string { return distHeaders(eventsV1) },
			body: func(p *pushed) string {
				l := p.manifest.Layers[0]
				return envelope(blobEvent(reg, p.repo, l.Digest, l.Size), blobEvent(reg, p.repo, p.manifest.Config.Digest, p.manifest.Config.Size),
					distributionEvent(reg, p, "push", false), distributionEvent(reg, p, "pull", false))
			},
			status: 202, indexed: true},
		{name: "distribution v2, OCI image manifest",
			push: func(n string) *pushed { return h.pushOCI(n, "oci", "oci-"+n) },
			path: "/webhooks/distribution", header: func(*pushed, string) map[string]string { return distHeaders(eventsV2) },
			body:   func(p *pushed) string { return envelope(distributionEvent(reg, p, "push", false)) },
			status: 202, indexed: true},
		{name: "distribution v2 with references: no registry lookup",
			push: func(n string) *pushed { return h.pushOCI(n, "oci", "oci-"+n) },
			path: "/webhooks/distribution", header: func(*pushed, string) map[string]string { return distHeaders(eventsV2) },
			body:   func(p *pushed) string { return envelope(distributionEvent(reg, p, "push", true)) },
			status: 202, indexed: true, fromEvent: true},
		{name: "distribution v2 image index: one job per platform",
			push: func(n string) *pushed { return h.pushIndex(n, "multi") },
			path: "/webhooks/distribution", header: func(*pushed, string) map[string]string { return distHeaders(eventsV2) },
			body:   func(p *pushed) string { return envelope(distributionEvent(reg, p, "push", false)) },
			status: 202, indexed: true},
		{name: "distribution blob push and pull only: ignored",
			path: "/webhooks/distribution", header: func(*pushed, string) map[string]string { return distHeaders(eventsV2) },
			body: func(p *pushed) string {
				return envelope(blobEvent(reg, p.repo, p.manifest.Layers[0].Digest, p.manifest.Layers[0].Size), distributionEvent(reg, p, "pull", false))
			},
			status: 200},
	}
}

// vendorWebhookCases are the events of Harbor, Quay, zot and GHCR.
func vendorWebhookCases(h *harness, basicAuth string) []webhookCase {
	return []webhookCase{
		{name: "harbor default PUSH_ARTIFACT",
			path: "/webhooks/harbor", header: func(*pushed, string) map[string]string {
				return map[string]string{"Authorization": whToken, "Content-Type": "application/json"}
			},
			body:   func(p *pushed) string { return harborDefault(p, "PUSH_ARTIFACT") },
			status: 202, indexed: true},
		{name: "harbor CloudEvents harbor.artifact.pushed",
			path: "/webhooks/harbor", header: func(*pushed, string) map[string]string {
				return map[string]string{"Authorization": "Bearer " + whToken, "Content-Type": "application/cloudevents+json"}
			},
			body:   harborCloudEvent,
			status: 202, indexed: true},
		{name: "harbor PULL_ARTIFACT: ignored",
			path: "/webhooks/harbor", header: func(*pushed, string) map[string]string {
				return map[string]string{"Authorization": "Bearer " + whToken, "Content-Type": "application/json"}
			},
			body:   func(p *pushed) string { return harborDefault(p, "PULL_ARTIFACT") },
			status: 200},
		{name: "quay repo_push: tags resolved to the digest",
			push: func(n string) *pushed { return h.pushImage(n, "1.0", "quay-"+n, "latest") },
			path: "/webhooks/quay", header: func(*pushed, string) map[string]string {
				return map[string]string{"Authorization": basicAuth, "Content-Type": "application/json"}
			},
			body:   func(p *pushed) string { return quayPush(p, "1.0", "latest") },
			status: 202, indexed: true},
		{name: "zot image.updated, binary mode, with its manifest: no registry lookup",
			path: "/webhooks/zot", header: func(*pushed, string) map[string]string {
				return map[string]string{"Authorization": basicAuth, "Content-Type": "application/json", "Ce-Specversion": "1.0",
					"Ce-Id": "0b8c5a7e-3f2a-4c1b-9e6d-2a1f0c9b8e7d", "Ce-Source": "zotregistry.dev", "Ce-Type": "zotregistry.image.updated", "Ce-Time": time.Now().UTC().Format(time.RFC3339Nano)}
			},
			body:   func(p *pushed) string { return zotData(p, true) },
			status: 202, indexed: true, fromEvent: true},
		{name: "zot image.updated of an image index",
			push: func(n string) *pushed { return h.pushIndex(n, "multi") },
			path: "/webhooks/zot", header: func(*pushed, string) map[string]string {
				return map[string]string{"Authorization": "Bearer " + whToken, "Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": "2", "Ce-Source": "zotregistry.dev", "Ce-Type": "zotregistry.image.updated"}
			},
			body:   func(p *pushed) string { return zotData(p, true) },
			status: 202, indexed: true},
		{name: "zot image.deleted: ignored",
			path: "/webhooks/zot", header: func(*pushed, string) map[string]string {
				return map[string]string{"Authorization": "Bearer " + whToken, "Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": "3", "Ce-Source": "zotregistry.dev", "Ce-Type": "zotregistry.image.deleted"}
			},
			body:   func(p *pushed) string { return zotData(p, false) },
			status: 200},
		{name: "ghcr package published, signed",
			push: func(n string) *pushed { return h.pushImage("octo-org/"+n, "v1", "ghcr-"+n) },
			path: "/webhooks/ghcr", header: func(_ *pushed, body string) map[string]string {
				return map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "package", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
					"X-GitHub-Hook-ID": "292430182", "X-Hub-Signature-256": hubSignature(whSecret, []byte(body)), "User-Agent": "GitHub-Hookshot/044aadd"}
			},
			body:   func(p *pushed) string { return ghcrPackage(p, "CONTAINER") },
			status: 202, indexed: true, fromEvent: true},
		{name: "ghcr npm package: ignored",
			path: "/webhooks/ghcr", header: func(_ *pushed, body string) map[string]string {
				return map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "package", "X-Hub-Signature-256": hubSignature(whSecret, []byte(body))}
			},
			body:   func(p *pushed) string { return ghcrPackage(p, "npm") },
			status: 200},
	}
}

// refusedWebhookCases are events refused: nothing reaches the queue.
func refusedWebhookCases(reg, basicAuth string) []webhookCase {
	return []webhookCase{
		// Refused: nothing reaches the queue.
		{name: "ghcr bad signature",
			path: "/webhooks/ghcr", header: func(_ *pushed, body string) map[string]string {
				return map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "package", "X-Hub-Signature-256": hubSignature("not-the-secret-at-all-123", []byte(body))}
			},
			body: func(p *pushed) string { return ghcrPackage(p, "CONTAINER") }, status: 401, code: "unauthorized"},
		{name: "distribution missing token",
			path: "/webhooks/distribution", header: func(*pushed, string) map[string]string { return map[string]string{"Content-Type": eventsV2} },
			body: func(p *pushed) string { return envelope(distributionEvent(reg, p, "push", false)) }, status: 401, code: "unauthorized"},
		{name: "harbor wrong token",
			path: "/webhooks/harbor", header: func(*pushed, string) map[string]string {
				return map[string]string{"Authorization": "Bearer " + whToken + "x", "Content-Type": "application/json"}
			},
			body: func(p *pushed) string { return harborDefault(p, "PUSH_ARTIFACT") }, status: 401, code: "unauthorized"},
		{name: "unknown registry",
			path: "/webhooks/distribution", header: func(*pushed, string) map[string]string { return distHeaders(eventsV2) },
			body: func(p *pushed) string {
				return envelope(distributionEvent("registry.evil.example:5000", p, "push", false))
			}, status: 403, code: "registry-not-allowed"},
		{name: "oversized body",
			path: "/webhooks/distribution", header: func(*pushed, string) map[string]string { return distHeaders(eventsV2) },
			body: func(p *pushed) string {
				ev := distributionEvent(reg, p, "push", false)
				ev["padding"] = strings.Repeat("x", 70<<10)
				return envelope(ev)
			},
			status: 413, code: "too-large"},
		{name: "invalid JSON",
			path: "/webhooks/quay", header: func(*pushed, string) map[string]string {
				return map[string]string{"Authorization": basicAuth, "Content-Type": "application/json"}
			},
			body: func(p *pushed) string { return strings.TrimSuffix(quayPush(p, p.tag), "}") }, status: 400, code: "bad-request"},
		{name: "wrong content type",
			path: "/webhooks/distribution", header: func(*pushed, string) map[string]string { return distHeaders("application/x-www-form-urlencoded") },
			body: func(p *pushed) string { return envelope(distributionEvent(reg, p, "push", false)) }, status: 415, code: "unsupported-media-type"},
	}
}

// runWebhookCase pushes the image of tc, posts its event and checks the
// answer, then that the image was indexed or that nothing was queued.
func runWebhookCase(t *testing.T, h *harness, tc webhookCase) {
	repo := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(tc.name))
	if len(repo) > 40 {
		repo = repo[:40]
	}
	repo = strings.Trim(repo, "-")
	var p *pushed
	if tc.push != nil {
		p = tc.push(repo)
	} else {
		p = h.pushImage(repo, "1", "pkg-"+repo)
	}
	body := tc.body(p)
	h.reg.Counter().Reset()
	status, out := h.post(tc.path, tc.header(p, body), body)
	if status != tc.status {
		t.Fatalf("HTTP %d, want %d: %v", status, tc.status, out)
	}
	if tc.code != "" && out["code"] != tc.code {
		t.Fatalf("code %v, want %s: %v", out["code"], tc.code, out)
	}
	if status == 200 {
		if ign, _ := out["ignored"].([]any); len(ign) == 0 {
			t.Fatalf("ignored without a reason: %v", out)
		}
	}
	if !tc.indexed {
		for _, d := range append(p.platforms, p.digest) {
			if n := h.count(`SELECT count(*) FROM index_report WHERE manifest_hash = $1`, string(d)); n != 0 {
				t.Fatalf("%s was queued", d)
			}
		}
		if n := h.count(`SELECT count(*) FROM webhook_pending`); n != 0 {
			t.Fatalf("%d pending rows", n)
		}
		return
	}
	for _, d := range p.platforms {
		r := h.wait(d)
		if r.State != report.StateIndexFinished || len(r.Packages) != 1 || len(r.Distributions) != 1 {
			t.Fatalf("%s: state %s, %d packages, %d distributions, error %q", d, r.State, len(r.Packages), len(r.Distributions), r.Err)
		}
	}
	if tc.fromEvent {
		if n := h.reg.Counter().Requests(devregistry.ClassManifests); n != 0 {
			t.Errorf("%d manifest requests: the job should come from the event", n)
		}
	}
}

// TestWebhookRetriesAndTagsMakeOneJob: a registry that sends one event again
// and again, and events for many tags of one digest, from several sources,
// lead to one job: the dispatcher publishes at most one pending job per
// digest.
func TestWebhookRetriesAndTagsMakeOneJob(t *testing.T) {
	h := newHarness(t)
	n := h.start(h.webhookConfig(2))
	p := h.pushImage("dedup", "1", "dedup-pkg", "2", "latest")
	reg := h.reg.Addr
	var bodies [][2]string // path, body
	same := envelope(distributionEvent(reg, p, "push", false))
	for range 8 {
		bodies = append(bodies, [2]string{"/webhooks/distribution", same}) // retries
	}
	for _, tag := range []string{"2", "latest"} {
		q := *p
		q.tag = tag
		bodies = append(bodies, [2]string{"/webhooks/distribution", envelope(distributionEvent(reg, &q, "push", false))},
			[2]string{"/webhooks/harbor", harborDefault(&q, "PUSH_ARTIFACT")})
	}
	bodies = append(bodies, [2]string{"/webhooks/quay", quayPush(p, "1", "2", "latest")})
	var wg sync.WaitGroup
	for _, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ct := eventsV2
			if b[0] != "/webhooks/distribution" {
				ct = "application/json"
			}
			status, out := h.post(b[0], map[string]string{"Authorization": "Bearer " + whToken, "Content-Type": ct}, b[1])
			if status != 202 {
				t.Errorf("%s: HTTP %d %v", b[0], status, out)
			}
		}()
	}
	wg.Wait()
	r := h.wait(p.digest)
	if r.State != report.StateIndexFinished {
		t.Fatalf("state %s: %s", r.State, r.Err)
	}
	runs, finished := h.runs(p.digest)
	if runs != 1 || finished != 1 {
		t.Fatalf("%d runs and %d final writes for %d events, want 1 and 1", runs, finished, len(bodies))
	}
	if d := deliveries(t, n.JS); d != 1 {
		t.Fatalf("%d job deliveries for %d events, want 1", d, len(bodies))
	}
}

// notifier is a small stand-in for Distribution's notification system,
// around the in-process registry: after a successful blob upload or
// manifest PUT it posts a v2 envelope with that one event to the
// dispatcher, from a queue, as registry:3 does.
type notifier struct {
	t      *testing.T
	url    atomic.Pointer[string]
	wg     sync.WaitGroup
	posted atomic.Int32
	codes  sync.Map // event id -> HTTP status
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (nt *notifier) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if r.Method != http.MethodPut || sw.status != http.StatusCreated {
			return
		}
		class, repo, ref := devregistry.Classify(r.URL.Path)
		target := map[string]any{"repository": repo}
		switch class {
		case devregistry.ClassManifests:
			d := w.Header().Get("Docker-Content-Digest")
			target["mediaType"] = r.Header.Get("Content-Type")
			target["digest"] = d
			target["size"], target["length"] = len(body), len(body)
			target["url"] = fmt.Sprintf("http://%s/v2/%s/manifests/%s", r.Host, repo, d)
			if !strings.HasPrefix(ref, "sha256:") {
				target["tag"] = ref
			}
		case devregistry.ClassUploads:
			d := r.URL.Query().Get("digest")
			target["mediaType"] = "application/octet-stream"
			target["digest"] = d
			target["url"] = fmt.Sprintf("http://%s/v2/%s/blobs/%s", r.Host, repo, d)
		default:
			return
		}
		ev := map[string]any{
			"id": fmt.Sprintf("ev-%d", time.Now().UnixNano()), "timestamp": time.Now().UTC().Format(time.RFC3339Nano), "action": "push", "target": target,
			"request": map[string]any{"id": "r", "addr": r.RemoteAddr, "host": r.Host, "method": r.Method, "useragent": r.UserAgent()},
			"actor":   map[string]any{}, "source": map[string]any{"addr": "devregistry:0", "instanceID": "e2e"},
		}
		nt.wg.Add(1)
		go nt.send(ev)
	})
}

func (nt *notifier) send(ev map[string]any) {
	defer nt.wg.Done()
	url := nt.url.Load()
	if url == nil {
		return
	}
	b, _ := json.MarshalIndent(map[string]any{"events": []any{ev}}, "", "   ")
	req, _ := http.NewRequest(http.MethodPost, *url, bytes.NewReader(b))
	req.Header.Set("Content-Type", eventsV2)
	req.Header.Set("Authorization", "Bearer "+whToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		nt.t.Errorf("notify: %v", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	nt.posted.Add(1)
	nt.codes.Store(ev["id"], resp.StatusCode)
}

// TestDistributionNotifierIndexesPushedImage: push an image to a registry
// that notifies the dispatcher on every push, as compose.yaml's registry:3
// is set up to, then poll the API until the report is IndexFinished. No
// other step.
func TestDistributionNotifierIndexesPushedImage(t *testing.T) {
	nt := &notifier{t: t}
	h := newHarness(t, devregistry.WithMiddleware(nt.middleware))
	t.Cleanup(nt.wg.Wait)
	h.start(h.webhookConfig(2))
	u := h.api.URL + "/webhooks/distribution"
	nt.url.Store(&u)

	l1, _ := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("base-files", "libc6")})
	l2, _ := devregistry.LayerFromFiles(map[string][]byte{"var/lib/dpkg/status": dpkgStatus("base-files", "libc6", "curl")})
	d, err := devregistry.PushLayers(context.Background(), h.reg.Ref("notified/app:1.0"), l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		r, err := h.client.Report(ctx, report.Digest(d.String()))
		if err == nil && r.State == report.StateIndexFinished {
			if len(r.Packages) != 3 || len(r.Distributions) != 1 {
				t.Fatalf("%d packages, %d distributions", len(r.Packages), len(r.Distributions))
			}
			break
		}
		if err == nil && r.State.Terminal() {
			t.Fatalf("state %s: %s", r.State, r.Err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no finished report for %s (last: %v, %v)", d, r, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	nt.wg.Wait()
	// Blob pushes (two layers and the config) were posted too, and answered
	// 200 (ignored); the manifest push 202.
	statuses := map[int]int{}
	nt.codes.Range(func(_, v any) bool { statuses[v.(int)]++; return true })
	if statuses[http.StatusAccepted] != 1 || statuses[http.StatusOK] < 3 || len(statuses) != 2 {
		t.Fatalf("notification answers %v, want one 202 and the blob pushes 200", statuses)
	}
}

// TestQuayTagResolutionRetried: a Quay push whose tags cannot be resolved
// (the registry fails) is stored with the error, retried in the background
// with backoff while the registry keeps failing, and indexed once it
// answers again.
func TestQuayTagResolutionRetried(t *testing.T) {
	h, broken, cfg := maintenanceHarness(t, 2, nil)
	h.start(cfg)
	p := h.pushImage("flaky", "1.0", "flaky-pkg", "latest")

	broken.Store(true)
	status, out := h.post("/webhooks/quay", quayHeaders(), quayPush(p, "1.0", "latest"))
	if status != http.StatusAccepted {
		t.Fatalf("HTTP %d: %v", status, out)
	}
	if def, _ := out["deferred"].([]any); len(def) != 2 {
		t.Fatalf("deferred %v, want both tags", out["deferred"])
	}
	rows := func() (n, minAttempts int, lastErr string) {
		h.t.Helper()
		if err := h.pool.QueryRow(context.Background(), `SELECT count(*), coalesce(min(attempts), 0), coalesce(max(last_error), '') FROM webhook_pending WHERE given_up_at IS NULL`).Scan(&n, &minAttempts, &lastErr); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	if n, a, e := rows(); n != 2 || a != 1 || !strings.Contains(e, "503") {
		t.Fatalf("pending rows: %d, attempts %d, error %q; want 2 rows of 1 attempt with the 503", n, a, e)
	}
	if n := h.count(`SELECT count(*) FROM index_report WHERE manifest_hash = $1`, string(p.digest)); n != 0 {
		t.Fatal("queued while the registry fails")
	}
	// The retries keep failing while the registry does.
	waitFor(t, "two more failed attempts", 30*time.Second, func() bool { _, a, _ := rows(); return a >= 3 })
	broken.Store(false)
	r := h.wait(p.digest)
	if r.State != report.StateIndexFinished || len(r.Packages) != 1 {
		t.Fatalf("state %s, %d packages: %s", r.State, len(r.Packages), r.Err)
	}
	waitFor(t, "the pending rows to go", 30*time.Second, func() bool { n, _, _ := rows(); return n == 0 })
	if runs, _ := h.runs(p.digest); runs != 1 {
		t.Fatalf("%d runs for two tags of one digest, want 1", runs)
	}
}

// TestQuayPrivateRegistry: the tags of a registry that wants credentials
// are resolved with the credentials Stevedore is configured with for it
// (Registries.Hosts, --registries), the same ones its layers are fetched
// with, not only with the Docker config's.
func TestQuayPrivateRegistry(t *testing.T) {
	var open atomic.Bool
	open.Store(true) // while pushing
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("robot:s3cret"))
	h := newHarness(t, devregistry.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !open.Load() && r.Header.Get("Authorization") != want {
				w.Header().Set("WWW-Authenticate", `Basic realm="private"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	cfg := h.webhookConfig(1)
	cfg.Registries.Hosts = map[string]registry.Host{h.reg.Addr: {Username: "robot", Password: "s3cret"}}
	h.start(cfg)
	p := h.pushImage("private", "1.0", "private-pkg")
	open.Store(false)

	status, out := h.post("/webhooks/quay", quayHeaders(), quayPush(p, "1.0"))
	if status != http.StatusAccepted {
		t.Fatalf("HTTP %d: %v", status, out)
	}
	if def, _ := out["deferred"].([]any); len(def) != 0 {
		t.Fatalf("deferred %v: the tag was not resolved with the configured credentials", out["deferred"])
	}
	r := h.wait(p.digest)
	if r.State != report.StateIndexFinished || len(r.Packages) != 1 {
		t.Fatalf("state %s, %d packages: %s", r.State, len(r.Packages), r.Err)
	}
}

// TestWebhookRefusedByTheRegistryAllowlist: an event for a registry that
// the webhook registries map but the registry allowlist (the one index
// requests and layer URIs must pass) refuses is answered 403, whatever the
// source, and queues nothing. GitHub's events, whose jobs are built from
// the event's layer list, were answered 200 "ignored", so GitHub never sent
// them again after the allowlist was fixed.
func TestWebhookRefusedByTheRegistryAllowlist(t *testing.T) {
	h := newHarness(t)
	cfg := h.webhookConfig(1)
	if err := cfg.Registries.Allowlist.Set("registry.only.example"); err != nil {
		t.Fatal(err)
	}
	h.start(cfg)
	reg := h.reg.Addr
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("stevedore:"+whToken))
	ghcrHeaders := func(body string) map[string]string {
		return map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "package", "X-Hub-Signature-256": hubSignature(whSecret, []byte(body))}
	}
	for _, tc := range []struct {
		name   string
		path   string
		body   func(p *pushed) string
		header func(body string) map[string]string
	}{
		{"ghcr package with its layers", "/webhooks/ghcr", func(p *pushed) string { return ghcrPackage(p, "CONTAINER") }, ghcrHeaders},
		{"distribution push by digest", "/webhooks/distribution", func(p *pushed) string { return envelope(distributionEvent(reg, p, "push", false)) },
			func(string) map[string]string { return distHeaders(eventsV2) }},
		{"distribution push with its layers", "/webhooks/distribution", func(p *pushed) string { return envelope(distributionEvent(reg, p, "push", true)) },
			func(string) map[string]string { return distHeaders(eventsV2) }},
		{"quay tag", "/webhooks/quay", func(p *pushed) string { return quayPush(p, p.tag) },
			func(string) map[string]string {
				return map[string]string{"Authorization": basicAuth, "Content-Type": "application/json"}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "refused/" + strings.ReplaceAll(tc.name, " ", "-")
			p := h.pushImage(repo, "1", "pkg")
			body := tc.body(p)
			h.reg.Counter().Reset()
			status, out := h.post(tc.path, tc.header(body), body)
			if status != http.StatusForbidden || out["code"] != "registry-not-allowed" {
				t.Fatalf("HTTP %d %v, want 403 registry-not-allowed", status, out)
			}
			if msg, _ := out["message"].(string); !strings.Contains(msg, "STEVEDORE_REGISTRY_ALLOWLIST") {
				t.Errorf("message %q does not say which setting to change", msg)
			}
			if n := h.count(`SELECT count(*) FROM index_report WHERE manifest_hash = $1`, string(p.digest)); n != 0 {
				t.Fatalf("%s was queued", p.digest)
			}
			if n := h.count(`SELECT count(*) FROM webhook_pending`); n != 0 {
				t.Fatalf("%d pending rows", n)
			}
			if n := h.reg.Counter().Requests(devregistry.ClassManifests); n != 0 {
				t.Errorf("%d manifest requests to a registry that is not allowed", n)
			}
		})
	}
}

// TestQuayMissingTagIsNotRetried: a Quay event naming a tag the registry
// does not have is answered with the tag ignored and its reason (a 404 is
// permanent), beside the tags that exist; nothing is kept for retry. A tag
// kept for retry after a registry failure that then answers 404 is given up
// at the next attempt, not retried 20 times.
func TestQuayMissingTagIsNotRetried(t *testing.T) {
	h, broken, cfg := maintenanceHarness(t, 1, nil)
	h.start(cfg)
	p := h.pushImage("tags", "1.0", "tags-pkg")
	header := quayHeaders()

	status, out := h.post("/webhooks/quay", header, quayPush(p, "1.0", "no-such-tag"))
	if status != http.StatusAccepted {
		t.Fatalf("HTTP %d: %v", status, out)
	}
	if acc, _ := out["accepted"].([]any); len(acc) != 1 {
		t.Fatalf("accepted %v, want the existing tag", out["accepted"])
	}
	ign, _ := out["ignored"].([]any)
	if len(ign) != 1 || !strings.Contains(fmt.Sprint(ign[0]), "tags:no-such-tag") || !strings.Contains(fmt.Sprint(ign[0]), "no such tag") {
		t.Fatalf("ignored %v, want the missing tag with its reason", out["ignored"])
	}
	if def, _ := out["deferred"].([]any); len(def) != 0 {
		t.Fatalf("deferred %v: a missing tag is not retried", def)
	}
	if n := h.count(`SELECT count(*) FROM webhook_pending`); n != 0 {
		t.Fatalf("%d pending rows for a missing tag", n)
	}

	// Only a missing tag: 200, ignored with the reason.
	status, out = h.post("/webhooks/quay", header, quayPush(p, "gone"))
	if ign, _ := out["ignored"].([]any); status != http.StatusOK || len(ign) != 1 {
		t.Fatalf("HTTP %d %v, want 200 with the tag ignored", status, out)
	}

	// A tag kept for retry (the registry failed) and deleted meanwhile:
	// the retry that gets the 404 gives up.
	h.pushImage("tags", "temp", "tags-pkg")
	broken.Store(true)
	status, out = h.post("/webhooks/quay", header, quayPush(p, "temp"))
	if def, _ := out["deferred"].([]any); status != http.StatusAccepted || len(def) != 1 {
		t.Fatalf("HTTP %d %v, want the tag deferred", status, out)
	}
	ref, err := name.NewTag(h.reg.Ref("tags:temp"))
	if err != nil {
		t.Fatal(err)
	}
	broken.Store(false)
	if err := remote.Delete(ref); err != nil {
		t.Fatal(err)
	}
	var attempts int
	var lastErr string
	waitFor(t, "the pending tag to be given up", 30*time.Second, func() bool {
		var givenUp bool
		if err := h.pool.QueryRow(context.Background(), `SELECT attempts, last_error, given_up_at IS NOT NULL FROM webhook_pending`).Scan(&attempts, &lastErr, &givenUp); err != nil {
			t.Fatal(err)
		}
		return givenUp
	})
	if attempts != 2 || !strings.Contains(lastErr, "no such tag") {
		t.Fatalf("given up after %d attempts with %q; want 2 (the failure, then the 404)", attempts, lastErr)
	}
}
