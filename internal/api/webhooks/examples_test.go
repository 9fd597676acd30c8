package webhooks

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Payloads as each project documents them (digests kept; hosts as in the
// documentation), used by the parser tests and as fuzz seeds.

// distributionV2Push is the "full event" of Distribution's notifications
// documentation (docs/content/about/notifications.md): a manifest push and
// two layer pushes in one envelope.
const distributionV2Push = `{
  "events": [
    {
      "id": "asdf-asdf-asdf-asdf-0",
      "timestamp": "2006-01-02T15:04:05Z",
      "action": "push",
      "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
        "length": 1,
        "repository": "library/test",
        "url": "https://example.com/v2/library/test/manifests/sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5"
      },
      "request": {"id": "asdfasdf", "addr": "client.local", "host": "registrycluster.local", "method": "PUT", "useragent": "test/0.1"},
      "actor": {"name": "test-actor"},
      "source": {"addr": "hostname.local:port"}
    },
    {
      "id": "asdf-asdf-asdf-asdf-1",
      "timestamp": "2006-01-02T15:04:05Z",
      "action": "push",
      "target": {
        "mediaType": "application/vnd.docker.container.image.rootfs.diff+x-gtar",
        "digest": "sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5",
        "length": 2,
        "repository": "library/test",
        "url": "https://example.com/v2/library/test/blobs/sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5"
      },
      "request": {"id": "asdfasdf", "addr": "client.local", "host": "registrycluster.local", "method": "PUT", "useragent": "test/0.1"},
      "actor": {"name": "test-actor"},
      "source": {"addr": "hostname.local:port"}
    },
    {
      "id": "asdf-asdf-asdf-asdf-2",
      "timestamp": "2006-01-02T15:04:05Z",
      "action": "push",
      "target": {
        "mediaType": "application/vnd.docker.container.image.rootfs.diff+x-gtar",
        "digest": "sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5",
        "length": 3,
        "repository": "library/test",
        "url": "https://example.com/v2/library/test/blobs/sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5"
      },
      "request": {"id": "asdfasdf", "addr": "client.local", "host": "registrycluster.local", "method": "PUT", "useragent": "test/0.1"},
      "actor": {"name": "test-actor"},
      "source": {"addr": "hostname.local:port"}
    }
  ]
}`

// distributionV1Pull is the documentation's event for the pull of a
// manifest (v1 envelope, registry 2.x).
const distributionV1Pull = `{
  "events": [
    {
      "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
      "timestamp": "2016-03-09T14:44:26.402973972-08:00",
      "action": "pull",
      "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
        "size": 708,
        "length": 708,
        "repository": "hello-world",
        "url": "http://192.168.100.227:5000/v2/hello-world/manifests/sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
        "tag": "latest"
      },
      "request": {"id": "6df24a34-0959-4923-81ca-14f09767db19", "addr": "192.168.64.11:42961", "host": "192.168.100.227:5000", "method": "GET", "useragent": "curl/7.38.0"},
      "actor": {},
      "source": {"addr": "xtal.local:5000", "instanceID": "a53db899-3b4b-4a62-a067-8dd013beaca4"}
    }
  ]
}`

// distributionV3IndexWithRefs is a registry:3 push of an OCI image index by
// tag, and of one of its image manifests with references
// (notifications.events.includereferences: true): config, then layers.
const distributionV3IndexWithRefs = `{
   "events": [
      {
         "id": "7f3d0a2e-4a7b-4bde-9a43-0c4d1f3b9b10",
         "timestamp": "2025-04-02T10:11:12.123456789Z",
         "action": "push",
         "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "size": 1024,
            "length": 1024,
            "repository": "team/app",
            "url": "http://registry.local:5000/v2/team/app/manifests/sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "references": [
               {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222", "size": 1470},
               {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333", "size": 3623807},
               {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444", "size": 512}
            ]
         },
         "request": {"id": "0c7b", "addr": "10.0.0.7:51000", "host": "registry.local:5000", "method": "PUT", "useragent": "containerd/2.0"},
         "actor": {},
         "source": {"addr": "registry-0:5000", "instanceID": "b5c1"}
      },
      {
         "id": "7f3d0a2e-4a7b-4bde-9a43-0c4d1f3b9b11",
         "timestamp": "2025-04-02T10:11:12.223456789Z",
         "action": "push",
         "target": {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555",
            "size": 856,
            "repository": "team/app",
            "url": "http://registry.local:5000/v2/team/app/manifests/sha256:5555555555555555555555555555555555555555555555555555555555555555",
            "tag": "1.0"
         },
         "request": {"id": "0c7c", "addr": "10.0.0.7:51000", "host": "registry.local:5000", "method": "PUT", "useragent": "containerd/2.0"},
         "actor": {},
         "source": {"addr": "registry-0:5000", "instanceID": "b5c1"}
      },
      {
         "id": "7f3d0a2e-4a7b-4bde-9a43-0c4d1f3b9b12",
         "timestamp": "2025-04-02T10:11:12.323456789Z",
         "action": "push",
         "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:6666666666666666666666666666666666666666666666666666666666666666",
            "size": 840,
            "repository": "team/app",
            "url": "http://registry.local:5000/v2/team/app/manifests/sha256:6666666666666666666666666666666666666666666666666666666666666666",
            "references": [
               {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:7777777777777777777777777777777777777777777777777777777777777777", "size": 167},
               {"mediaType": "application/vnd.in-toto+json", "digest": "sha256:8888888888888888888888888888888888888888888888888888888888888888", "size": 1411}
            ]
         },
         "request": {"id": "0c7d", "addr": "10.0.0.7:51000", "host": "registry.local:5000", "method": "PUT", "useragent": "containerd/2.0"},
         "actor": {},
         "source": {"addr": "registry-0:5000", "instanceID": "b5c1"}
      }
   ]
}`

// harborDefaultPush is the Default-format push of Harbor's webhook
// documentation.
const harborDefaultPush = `{
	"type": "PUSH_ARTIFACT",
	"occur_at": 1586922308,
	"operator": "admin",
	"event_data": {
		"resources": [{
			"digest": "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8",
			"tag": "latest",
			"resource_url": "hub.harbor.com/test-webhook/debian:latest"
		}],
		"repository": {
			"date_created": 1586922308,
			"name": "debian",
			"namespace": "test-webhook",
			"repo_full_name": "test-webhook/debian",
			"repo_type": "private"
		}
	}
}`

// harborCloudEventsPush is the CloudEvents format as Harbor's formatter
// writes it (src/pkg/notifier/formats/cloudevents.go), for a push by digest.
const harborCloudEventsPush = `{"specversion":"1.0","requestid":"2eedfab8-61d3-4f3c-8ec3-8f82d1ec4c84","id":"4b2f89a6-548d-4c12-9993-a1f5790b97d2","source":"/projects/1/webhook/policies/3","type":"harbor.artifact.pushed","datacontenttype":"application/json","time":"2023-03-06T06:08:43Z","data":{"resources":[{"digest":"sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c","tag":"sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c","resource_url":"harbor.dev/library/busybox@sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"}],"repository":{"date_created":1677053165,"name":"busybox","namespace":"library","repo_full_name":"library/busybox","repo_type":"public"}},"operator":"robot$library+ci"}`

// harborCloudEventsPull is the formatter's documented example: a pull.
const harborCloudEventsPull = `{"specversion":"1.0","requestid":"2eedfab8-61d3-4f3c-8ec3-8f82d1ec4c84","id":"4b2f89a6-548d-4c12-9993-a1f5790b97d2","source":"/projects/1/webhook/policies/3","type":"harbor.artifact.pulled","datacontenttype":"application/json","time":"2023-03-06T06:08:43Z","data":{"resources":[{"digest":"sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c","tag":"sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c","resource_url":"harbor.dev/library/busybox@sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"}],"repository":{"date_created":1677053165,"name":"busybox","namespace":"library","repo_full_name":"library/busybox","repo_type":"public"}},"operator":"robot$library+scanner-Trivy-51fe4548-bbe5-11ed-9217-0242ac14000d"}`

// quayRepoPush is the repository push event of Quay's documentation
// ("Repository Notifications").
const quayRepoPush = `{
  "name": "repository",
  "repository": "dgangaia/test",
  "namespace": "dgangaia",
  "docker_url": "quay.io/dgangaia/test",
  "homepage": "https://quay.io/repository/dgangaia/repository",
  "updated_tags": [
    "latest"
  ]
}`

// quayRepoPushLegacy is the older form, with updated_tags mapping tags to
// image ids (Quay's 2013 example payload).
const quayRepoPushLegacy = `{
  "pushed_image_count": 2,
  "name": "ubuntu",
  "repository":"devtable/ubuntu",
  "docker_url": "quay.io/devtable/ubuntu",
  "updated_tags": {
    "latest": "b750fe79269d2ec9a3c593ef05b4332b1d1a02a62b4accb2c21d589ff2f5f2dc"
  },
  "namespace": "devtable",
  "visibility": "private",
  "homepage": "https://quay.io/repository/devtable/ubuntu"
}`

// quayBuildQueued is a Dockerfile build event sent to the same webhook: not
// a push.
const quayBuildQueued = `{
  "build_id": "296ec063-5f86-4706-a469-f0a400bf9df2",
  "trigger_kind": "github",
  "name": "test",
  "repository": "dgangaia/test",
  "namespace": "dgangaia",
  "docker_url": "quay.io/dgangaia/test",
  "trigger_id": "38b6e180-9521-4ff7-9844-acf371340b9e",
  "docker_tags": ["master", "latest"],
  "repo": "test",
  "homepage": "https://quay.io/repository/dgangaia/test/build/296ec063-5f86-4706-a469-f0a400bf9df2"
}`

// zotManifest is an image manifest as zot puts it in its image.updated
// event's "manifest" field.
const zotManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:9a2b0ea1dd2ddd7e2d9bd3c8d1f7e2f6d8f5c5b0e5b1f3c6a5f7a4d0c0b1a2f3","size":581},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:c6a83fedfae6ed8a4f5f7cbb6a7b6f0a5a2e5f2b1d1c9e8f7a6b5c4d3e2f1a0b","size":3408729}]}`

func zotManifestDigest() string {
	sum := sha256.Sum256([]byte(zotManifest))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// zotImageUpdatedData is the data of a binary-mode zotregistry.image.updated
// event (pkg/extensions/events: name, reference, digest, mediaType,
// manifest), for zotManifest pushed as tag 3.20.
func zotImageUpdatedData() string {
	return `{"digest":"` + zotManifestDigest() + `","manifest":` + jsonString(zotManifest) + `,"mediaType":"application/vnd.oci.image.manifest.v1+json","name":"library/alpine","reference":"3.20"}`
}

func jsonString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// ghcrPackagePublished is a "package" event for a container package,
// shaped like octokit/webhooks' payload example
// (payload-examples/api.github.com/package/published.docker.payload.json)
// with full-length digests; long URL fields are left out.
const ghcrPackagePublished = `{
  "action": "published",
  "package": {
    "id": 10696,
    "name": "hello-world",
    "namespace": "Codertocat",
    "description": null,
    "ecosystem": "CONTAINER",
    "package_type": "CONTAINER",
    "html_url": "https://github.com/Codertocat/hello-world/packages/10696",
    "created_at": "2019-05-09T23:28:29Z",
    "updated_at": "2019-05-09T23:28:29Z",
    "owner": {"login": "Codertocat", "id": 21031067, "type": "User", "site_admin": false},
    "package_version": {
      "id": 57755790,
      "version": "sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498",
      "name": "sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498",
      "description": "Hello-World in a docker container",
      "summary": "Hello-World in a docker container",
      "manifest": "",
      "html_url": "https://github.com/Codertocat/hello-world/pkgs/container/hello-world/57755790",
      "target_commitish": "master",
      "target_oid": "6c62fb45fe66bfb1ea9a66abc38f6a0cc974292b",
      "created_at": "0001-01-01T00:00:00Z",
      "updated_at": "0001-01-01T00:00:00Z",
      "metadata": [],
      "container_metadata": {
        "tag": {"name": "latest", "digest": "sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498"},
        "labels": {"description": "Hello-World in a docker container", "source": "https://github.com/Codertocat/hello-world", "revision": "", "image_url": "https://github.com/Codertocat/hello-world", "licenses": "", "all_labels": {}},
        "manifest": {
          "digest": "sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498",
          "media_type": "application/vnd.docker.distribution.manifest.v2+json",
          "uri": "repositories/Codertocat/hello-world/manifests/sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498",
          "size": 1782,
          "config": {"digest": "sha256:37e1478a8ffb0513113dbbb172bfafdf56ba24014a671921a2593d83da7a0608", "media_type": "application/vnd.docker.container.image.v1+json", "size": 7205},
          "layers": [
            {"digest": "sha256:fd18d0201d0ce0c5e103902d894f5d601fc5dde76688aa7dae786840141d23e4", "media_type": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 26576195},
            {"digest": "sha256:0fa20a868a60ceb7bc8a95981a4bd56fac4c2d9de1f8745eae546146e48a8e0f", "media_type": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 51166445}
          ]
        }
      },
      "package_files": [],
      "installation_command": "docker pull ghcr.io/codertocat/hello-world:latest",
      "package_url": "ghcr.io/Codertocat/hello-world:latest"
    },
    "registry": {"about_url": "https://docs.github.com/packages/learn-github-packages/introduction-to-github-packages", "name": "GitHub CONTAINER registry", "type": "CONTAINER", "url": "https://CONTAINER.pkg.github.com/Codertocat", "vendor": "GitHub Inc"}
  },
  "repository": {"id": 185882436, "name": "hello-world", "full_name": "Codertocat/hello-world", "private": true},
  "sender": {"login": "Codertocat", "id": 21031067, "type": "User"}
}`

// ghcrNpmPublished is a "package" event for an npm package: not a
// container.
const ghcrNpmPublished = `{
  "action": "published",
  "package": {
    "id": 10696,
    "name": "hello-world-npm",
    "namespace": "Codertocaat/hello-world-npm",
    "ecosystem": "npm",
    "package_type": "npm",
    "owner": {"login": "Codertocat"},
    "package_version": {
      "id": 24147,
      "version": "1.0.0",
      "name": "hello-world-npm",
      "package_url": ""
    },
    "registry": {"name": "GitHub npm registry", "type": "npm", "url": "https://npm.pkg.github.com/@Codertocat", "vendor": "GitHub Inc"}
  },
  "sender": {"login": "Codertocat"}
}`

// ghcrPing is the first delivery of a new webhook.
const ghcrPing = `{"zen":"Design for failure.","hook_id":109948940,"hook":{"type":"Repository","id":109948940,"name":"web","active":true,"events":["package"],"config":{"content_type":"json","insecure_ssl":"0","url":"https://smee.io/****************"}}}`
