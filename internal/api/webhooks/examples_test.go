package webhooks

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"strings"
)

// Payloads as each project documents them (digests kept; hosts as in the
// documentation), used by the parser tests and as fuzz seeds. Each is a
// file of testdata/payloads, read as it is (no newline added at the end).

// distributionV2Push is the "full event" of Distribution's notifications
// documentation (docs/content/about/notifications.md): a manifest push and
// two layer pushes in one envelope.
//
//go:embed testdata/payloads/distribution_v2_push.json
var distributionV2Push string

// distributionV1Pull is the documentation's event for the pull of a
// manifest (v1 envelope, registry 2.x).
//
//go:embed testdata/payloads/distribution_v1_pull.json
var distributionV1Pull string

// distributionV3IndexWithRefs is a registry:3 push of an OCI image index by
// tag, and of one of its image manifests with references
// (notifications.events.includereferences: true): config, then layers.
//
//go:embed testdata/payloads/distribution_v3_index_with_refs.json
var distributionV3IndexWithRefs string

// harborDefaultPush is the Default-format push of Harbor's webhook
// documentation.
//
//go:embed testdata/payloads/harbor_default_push.json
var harborDefaultPush string

// harborCloudEventsPush is the CloudEvents format as Harbor's formatter
// writes it (src/pkg/notifier/formats/cloudevents.go), for a push by digest.
//
//go:embed testdata/payloads/harbor_cloud_events_push.json
var harborCloudEventsPush string

// harborCloudEventsPull is the formatter's documented example: a pull.
//
//go:embed testdata/payloads/harbor_cloud_events_pull.json
var harborCloudEventsPull string

// quayRepoPush is the repository push event of Quay's documentation
// ("Repository Notifications").
//
//go:embed testdata/payloads/quay_repo_push.json
var quayRepoPush string

// quayRepoPushLegacy is the older form, with updated_tags mapping tags to
// image ids (Quay's 2013 example payload).
//
//go:embed testdata/payloads/quay_repo_push_legacy.json
var quayRepoPushLegacy string

// quayBuildQueued is a Dockerfile build event sent to the same webhook: not
// a push.
//
//go:embed testdata/payloads/quay_build_queued.json
var quayBuildQueued string

// zotManifest is an image manifest as zot puts it in its image.updated
// event's "manifest" field.
//
//go:embed testdata/payloads/zot_manifest.json
var zotManifest string

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
//
//go:embed testdata/payloads/ghcr_package_published.json
var ghcrPackagePublished string

// ghcrNpmPublished is a "package" event for an npm package: not a
// container.
//
//go:embed testdata/payloads/ghcr_npm_published.json
var ghcrNpmPublished string

// ghcrPing is the first delivery of a new webhook.
//
//go:embed testdata/payloads/ghcr_ping.json
var ghcrPing string
