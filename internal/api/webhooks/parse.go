package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/stevedore-dev/stevedore/internal/layer/verify"
	"github.com/stevedore-dev/stevedore/report"
)

// target is one image an event asks to index: a repository in the registry
// the event names, by digest, or by tag when the source sends only tags.
type target struct {
	// Registry is the registry host as the event names it (before the
	// allowlist maps it to the host to pull from).
	Registry   string
	Repository string
	// Digest is the manifest (or image index) digest; empty when only Tag
	// is known.
	Digest report.Digest
	Tag    string
	// MediaType is the manifest's media type when the event says.
	MediaType string
	// Layers is the manifest's layer list when the event carried it (zot's
	// manifest, Distribution's references, GitHub's container metadata):
	// the job is then built without asking the registry.
	Layers []layerDesc
}

type layerDesc struct {
	Digest    report.Digest
	MediaType string
	Size      int64
}

// payload is what a parser found in one request: images to index and, for
// each event it skipped, why.
type payload struct {
	Targets []target
	Ignored []string
}

func (p *payload) ignore(format string, args ...any) {
	p.Ignored = append(p.Ignored, fmt.Sprintf(format, args...))
}

// mediaType returns the media type of a Content-Type header ("" when it is
// missing or malformed).
func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// decodeJSON decodes one JSON document, with errors that say where it is
// wrong.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return fmt.Errorf("invalid JSON at byte %d: %w", syn.Offset, err)
		case errors.As(err, &typ):
			return fmt.Errorf("field %q: %s is not a valid %s (byte %d)", typ.Field, typ.Value, typ.Type, typ.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return errors.New("invalid JSON: the document ends early")
		case errors.Is(err, io.EOF):
			return errors.New("empty body: want a JSON document")
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON document")
	}
	return nil
}

// splitImageRef splits "host/repo/path[:tag][@digest]" (the form Harbor's
// resource_url, Quay's docker_url and GitHub's package_url take) into host,
// repository, tag and digest.
func splitImageRef(s string) (host, repo, tag, digest string, err error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	host, rest, ok := strings.Cut(s, "/")
	if !ok || host == "" || rest == "" {
		return "", "", "", "", fmt.Errorf("%q is not host/repository", s)
	}
	rest, digest, _ = strings.Cut(rest, "@")
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i:], "/") {
		rest, tag = rest[:i], rest[i+1:]
	}
	if err := validRepository(host, rest); err != nil {
		return "", "", "", "", fmt.Errorf("%q: %w", s, err)
	}
	return host, rest, tag, digest, nil
}

// validRepository checks that host and repo name a repository the way a
// registry spells one. Case is not checked: GitHub sends owner names with
// capitals and the caller lower-cases them.
func validRepository(host, repo string) error {
	if repo == "" {
		return errors.New("no repository name")
	}
	if _, err := name.NewRepository(host+"/"+strings.ToLower(repo), name.StrictValidation); err != nil {
		return fmt.Errorf("not a repository: %w", err)
	}
	return nil
}

// isManifest reports whether mt names an image manifest or an image index,
// the two kinds of manifest Stevedore indexes.
func isManifest(mt string) bool {
	m := types.MediaType(mt)
	return m.IsImage() || m.IsIndex()
}

// layersOf returns the filesystem layers of an image manifest, given its
// config media type and the descriptors after the config. ok is false
// when the manifest is not a container image (an artifact, an attestation)
// or lists no filesystem layer.
func layersOf(configType string, descs []layerDesc) (layers []layerDesc, ok bool) {
	if !types.MediaType(configType).IsConfig() {
		return nil, false
	}
	for _, d := range descs {
		if !types.MediaType(d.MediaType).IsLayer() {
			return nil, false
		}
		if _, err := report.ParseDigest(string(d.Digest)); err != nil {
			return nil, false
		}
		layers = append(layers, d)
	}
	return layers, len(layers) > 0 && len(layers) <= report.MaxLayers
}

// manifestLayers reads the layer list of a raw image manifest whose digest
// is d. Nothing is returned unless the bytes hash to d and the manifest is
// a container image with filesystem layers.
func manifestLayers(d report.Digest, raw []byte) []layerDesc {
	if d.Algorithm() != "sha256" || len(raw) == 0 {
		return nil
	}
	if verify.Bytes(d, raw) != nil {
		return nil
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Config    struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"layers"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	descs := make([]layerDesc, 0, len(m.Layers))
	for _, l := range m.Layers {
		descs = append(descs, layerDesc{Digest: report.Digest(l.Digest), MediaType: l.MediaType, Size: l.Size})
	}
	layers, ok := layersOf(m.Config.MediaType, descs)
	if !ok {
		return nil
	}
	return layers
}

// --- CNCF Distribution ---------------------------------------------------

// distributionEventsPrefix starts the media types of Distribution's
// notification envelopes: ...events.v1+json (2.x, several events per
// envelope) and ...events.v2+json (3.x, one event per envelope).
const distributionEventsPrefix = "application/vnd.docker.distribution.events."

func distributionContentType(mt string) bool {
	return mt == "application/json" || strings.HasPrefix(mt, distributionEventsPrefix) && strings.HasSuffix(mt, "+json")
}

type distributionDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type distributionEnvelope struct {
	Events *[]struct {
		ID     string `json:"id"`
		Action string `json:"action"`
		Target struct {
			MediaType  string                   `json:"mediaType"`
			Digest     string                   `json:"digest"`
			Repository string                   `json:"repository"`
			URL        string                   `json:"url"`
			Tag        string                   `json:"tag"`
			References []distributionDescriptor `json:"references"`
		} `json:"target"`
		Request struct {
			Host string `json:"host"`
		} `json:"request"`
	} `json:"events"`
}

// parseDistribution reads a notification envelope. Manifest and index
// pushes are indexed; blob pushes, pulls, mounts and deletes are ignored.
// The registry is the host of the target's URL (built from the host the
// client pushed to, or the registry's http.host setting), else the
// request's host.
func parseDistribution(body []byte) (*payload, error) {
	var env distributionEnvelope
	if err := decodeJSON(body, &env); err != nil {
		return nil, err
	}
	if env.Events == nil {
		return nil, errors.New(`field "events": missing: not a notification envelope`)
	}
	p := &payload{}
	if len(*env.Events) == 0 {
		p.ignore("the envelope holds no events")
	}
	for i, ev := range *env.Events {
		id := ev.ID
		if id == "" {
			id = fmt.Sprintf("#%d", i)
		}
		tg := ev.Target
		switch {
		case ev.Action != "push":
			p.ignore("event %s: action %q (only pushes are indexed)", id, ev.Action)
			continue
		case !isManifest(tg.MediaType):
			p.ignore("event %s: target media type %q is not an image manifest or index", id, tg.MediaType)
			continue
		}
		d, err := report.ParseDigest(tg.Digest)
		if err != nil {
			return nil, fmt.Errorf("events[%d].target.digest: %w", i, err)
		}
		if tg.Repository == "" {
			return nil, fmt.Errorf("events[%d].target.repository: missing", i)
		}
		host := ev.Request.Host
		if tg.URL != "" {
			u, err := url.Parse(tg.URL)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("events[%d].target.url: %q is not an absolute URL", i, tg.URL)
			}
			host = u.Host
		}
		if host == "" {
			return nil, fmt.Errorf("events[%d]: no registry host: neither target.url nor request.host is set", i)
		}
		t := target{Registry: host, Repository: tg.Repository, Digest: d, Tag: tg.Tag, MediaType: tg.MediaType}
		// With notifications.events.includereferences, an image
		// manifest's references are its config and then its layers.
		if types.MediaType(tg.MediaType).IsImage() && len(tg.References) > 0 {
			descs := make([]layerDesc, 0, len(tg.References)-1)
			for _, r := range tg.References[1:] {
				descs = append(descs, layerDesc{Digest: report.Digest(r.Digest), MediaType: r.MediaType, Size: r.Size})
			}
			layers, ok := layersOf(tg.References[0].MediaType, descs)
			if !ok {
				p.ignore("event %s: %s is not a container image with filesystem layers (an artifact or attestation)", id, d)
				continue
			}
			t.Layers = layers
		}
		p.Targets = append(p.Targets, t)
	}
	return p, nil
}

// --- Harbor -----------------------------------------------------------------

const (
	harborPushType       = "PUSH_ARTIFACT"
	harborCloudEventType = "harbor.artifact.pushed"
)

func harborContentType(mt string) bool {
	return mt == "application/json" || mt == "application/cloudevents+json"
}

type harborEventData struct {
	Resources []struct {
		Digest      string `json:"digest"`
		Tag         string `json:"tag"`
		ResourceURL string `json:"resource_url"`
	} `json:"resources"`
	Repository struct {
		Name         string `json:"name"`
		Namespace    string `json:"namespace"`
		RepoFullName string `json:"repo_full_name"`
	} `json:"repository"`
}

// parseHarbor reads Harbor's Default payload ({"type": "PUSH_ARTIFACT",
// "event_data": ...}) or its CloudEvents payload in structured mode
// ({"specversion": "1.0", "type": "harbor.artifact.pushed", "data": ...}).
func parseHarbor(body []byte) (*payload, error) {
	var ev struct {
		SpecVersion string           `json:"specversion"`
		Type        string           `json:"type"`
		EventData   *harborEventData `json:"event_data"`
		Data        *harborEventData `json:"data"`
	}
	if err := decodeJSON(body, &ev); err != nil {
		return nil, err
	}
	p := &payload{}
	data, field := ev.EventData, "event_data"
	if ev.SpecVersion != "" {
		if ev.Type != harborCloudEventType {
			p.ignore("CloudEvent type %q (only %s is indexed)", ev.Type, harborCloudEventType)
			return p, nil
		}
		data, field = ev.Data, "data"
	} else if ev.Type != harborPushType {
		if ev.Type == "" {
			return nil, errors.New(`field "type": missing: not a Harbor webhook payload`)
		}
		p.ignore("event type %q (only %s is indexed)", ev.Type, harborPushType)
		return p, nil
	}
	if data == nil {
		return nil, fmt.Errorf("field %q: missing", field)
	}
	if len(data.Resources) == 0 {
		p.ignore("the event lists no resources")
	}
	for i, r := range data.Resources {
		d, err := report.ParseDigest(r.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s.resources[%d].digest: %w", field, i, err)
		}
		host, repo, _, _, err := splitImageRef(r.ResourceURL)
		if err != nil {
			return nil, fmt.Errorf("%s.resources[%d].resource_url: %w", field, i, err)
		}
		if full := data.Repository.RepoFullName; full != "" {
			if err := validRepository(host, full); err != nil {
				return nil, fmt.Errorf("%s.repository.repo_full_name: %w", field, err)
			}
			repo = full
		}
		tag := r.Tag
		if tag == r.Digest {
			tag = "" // pushed by digest
		}
		p.Targets = append(p.Targets, target{Registry: host, Repository: repo, Digest: d, Tag: tag})
	}
	return p, nil
}

// --- Quay -------------------------------------------------------------------

// parseQuay reads a repo_push notification: {"docker_url":
// "quay.io/ns/repo", "updated_tags": ["latest"]} (older Quay sent
// updated_tags as an object of tag to image id). It names tags only: each
// is resolved to a digest through the registry.
func parseQuay(body []byte) (*payload, error) {
	var ev struct {
		Repository  string          `json:"repository"`
		DockerURL   string          `json:"docker_url"`
		UpdatedTags json.RawMessage `json:"updated_tags"`
	}
	if err := decodeJSON(body, &ev); err != nil {
		return nil, err
	}
	p := &payload{}
	if len(ev.UpdatedTags) == 0 || string(ev.UpdatedTags) == "null" {
		p.ignore("not a repo_push event (no updated_tags)")
		return p, nil
	}
	var tags []string
	if err := json.Unmarshal(ev.UpdatedTags, &tags); err != nil {
		var byTag map[string]json.RawMessage
		if err := json.Unmarshal(ev.UpdatedTags, &byTag); err != nil {
			return nil, errors.New(`field "updated_tags": want a list of tags`)
		}
		for t := range byTag {
			tags = append(tags, t)
		}
	}
	if ev.DockerURL == "" {
		return nil, errors.New(`field "docker_url": missing`)
	}
	host, repo, _, _, err := splitImageRef(ev.DockerURL)
	if err != nil {
		return nil, fmt.Errorf("field \"docker_url\": %w", err)
	}
	if len(tags) == 0 {
		p.ignore("updated_tags is empty")
	}
	for i, t := range tags {
		if t == "" {
			return nil, fmt.Errorf("updated_tags[%d]: empty tag", i)
		}
		p.Targets = append(p.Targets, target{Registry: host, Repository: repo, Tag: t})
	}
	return p, nil
}

// --- zot --------------------------------------------------------------------

// zotImageUpdated ends the CloudEvents type of zot's image pushes:
// "zotregistry.image.updated" by default, "<typePrefix>.image.updated"
// with the events extension's typePrefix setting.
const zotImageUpdated = ".image.updated"

type zotEvent struct {
	Type, Source string
	Data         struct {
		Name      string `json:"name"`
		Reference string `json:"reference"`
		Digest    string `json:"digest"`
		MediaType string `json:"mediaType"`
		Manifest  string `json:"manifest"`
	}
}

// parseZot reads a zot event: in binary mode (what zot's http sink sends)
// the attributes are Ce-* headers and the body is the data; in structured
// mode (Content-Type application/cloudevents+json) the body holds both.
// The registry is defaultHost when set, else the host of the event's
// source when it is a URL.
func parseZot(contentType, ceType, ceSource string, body []byte, defaultHost string) (*payload, error) {
	var ev zotEvent
	if mediaType(contentType) == "application/cloudevents+json" {
		var s struct {
			Type   string          `json:"type"`
			Source string          `json:"source"`
			Data   json.RawMessage `json:"data"`
		}
		if err := decodeJSON(body, &s); err != nil {
			return nil, err
		}
		ev.Type, ev.Source = s.Type, s.Source
		if ev.Type == "" {
			return nil, errors.New(`field "type": missing: not a CloudEvent`)
		}
		if strings.HasSuffix(ev.Type, zotImageUpdated) {
			if len(s.Data) == 0 {
				return nil, errors.New(`field "data": missing`)
			}
			if err := decodeJSON(s.Data, &ev.Data); err != nil {
				return nil, fmt.Errorf("field \"data\": %w", err)
			}
		}
	} else {
		ev.Type, ev.Source = ceType, ceSource
		if ev.Type == "" {
			return nil, errors.New("header Ce-Type: missing: not a CloudEvent in binary mode")
		}
		if strings.HasSuffix(ev.Type, zotImageUpdated) {
			if err := decodeJSON(body, &ev.Data); err != nil {
				return nil, err
			}
		}
	}
	p := &payload{}
	if !strings.HasSuffix(ev.Type, zotImageUpdated) {
		p.ignore("event type %q (only *%s is indexed)", ev.Type, zotImageUpdated)
		return p, nil
	}
	data := ev.Data
	if !isManifest(data.MediaType) {
		p.ignore("%s: media type %q is not an image manifest or index", data.Name, data.MediaType)
		return p, nil
	}
	d, err := report.ParseDigest(data.Digest)
	if err != nil {
		return nil, fmt.Errorf("data.digest: %w", err)
	}
	if data.Name == "" {
		return nil, errors.New("data.name: missing")
	}
	host := defaultHost
	if host == "" {
		if u, err := url.Parse(ev.Source); err == nil && u.Host != "" {
			host = u.Host
		}
	}
	if host == "" {
		return nil, fmt.Errorf("the event names no registry: its source %q is not a URL; set STEVEDORE_WEBHOOK_ZOT_REGISTRY to the zot registry's host", ev.Source)
	}
	t := target{Registry: host, Repository: data.Name, Digest: d, MediaType: data.MediaType}
	if data.Reference != data.Digest {
		t.Tag = data.Reference
	}
	if types.MediaType(data.MediaType).IsImage() {
		t.Layers = manifestLayers(d, []byte(data.Manifest))
	}
	p.Targets = append(p.Targets, t)
	return p, nil
}

// --- GitHub Container Registry ------------------------------------------

func ghcrContentType(mt string) bool {
	return mt == "application/json" || mt == "application/x-www-form-urlencoded"
}

type ghcrPackage struct {
	Name        string `json:"name"`
	PackageType string `json:"package_type"`
	Ecosystem   string `json:"ecosystem"`
	Owner       struct {
		Login string `json:"login"`
	} `json:"owner"`
	PackageVersion *struct {
		Name              string `json:"name"`
		Version           string `json:"version"`
		PackageURL        string `json:"package_url"`
		ContainerMetadata *struct {
			Tag struct {
				Name   string `json:"name"`
				Digest string `json:"digest"`
			} `json:"tag"`
			Manifest *struct {
				Digest    string `json:"digest"`
				MediaType string `json:"media_type"`
				Config    struct {
					MediaType string `json:"media_type"`
				} `json:"config"`
				Layers []struct {
					Digest    string `json:"digest"`
					MediaType string `json:"media_type"`
					Size      int64  `json:"size"`
				} `json:"layers"`
			} `json:"manifest"`
		} `json:"container_metadata"`
	} `json:"package_version"`
}

// parseGHCR reads a GitHub webhook delivery of event kind event (the
// X-GitHub-Event header): "package" (and the older "registry_package")
// events published or updated for a container package are indexed; a ping
// and every other event are ignored. A delivery configured with content
// type "application/x-www-form-urlencoded" carries the JSON in the
// "payload" form field.
func parseGHCR(event, contentType string, body []byte) (*payload, error) {
	if mediaType(contentType) == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("form body: %w", err)
		}
		if !form.Has("payload") {
			return nil, errors.New(`form body: field "payload" missing`)
		}
		body = []byte(form.Get("payload"))
	}
	var ev struct {
		Action          string       `json:"action"`
		Package         *ghcrPackage `json:"package"`
		RegistryPackage *ghcrPackage `json:"registry_package"`
	}
	if err := decodeJSON(body, &ev); err != nil {
		return nil, err
	}
	p := &payload{}
	switch event {
	case "package", "registry_package":
	case "":
		return nil, errors.New("header X-GitHub-Event: missing")
	case "ping":
		p.ignore("ping: the webhook is set up")
		return p, nil
	default:
		p.ignore("event %q (only package events are indexed)", event)
		return p, nil
	}
	pkg := ev.Package
	if event == "registry_package" {
		pkg = ev.RegistryPackage
	}
	if pkg == nil {
		return nil, fmt.Errorf("field %q: missing", event)
	}
	if ev.Action != "published" && ev.Action != "updated" {
		p.ignore("action %q (only published and updated are indexed)", ev.Action)
		return p, nil
	}
	kind := strings.ToLower(pkg.PackageType)
	if kind == "" {
		kind = strings.ToLower(pkg.Ecosystem)
	}
	if kind != "container" && kind != "docker" {
		p.ignore("package type %q is not a container", pkg.PackageType)
		return p, nil
	}
	pv := pkg.PackageVersion
	if pv == nil {
		return nil, fmt.Errorf("%s.package_version: missing", event)
	}
	digest := pv.Name
	if cm := pv.ContainerMetadata; cm != nil && cm.Tag.Digest != "" {
		digest = cm.Tag.Digest
	}
	if !strings.HasPrefix(digest, "sha256:") && strings.HasPrefix(pv.Version, "sha256:") {
		digest = pv.Version
	}
	d, err := report.ParseDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("%s.package_version: no manifest digest: %w", event, err)
	}
	var host, repo, tag string
	if pv.PackageURL != "" {
		if host, repo, tag, _, err = splitImageRef(pv.PackageURL); err != nil {
			return nil, fmt.Errorf("%s.package_version.package_url: %w", event, err)
		}
	} else {
		if pkg.Owner.Login == "" || pkg.Name == "" {
			return nil, fmt.Errorf("%s: neither package_version.package_url nor owner.login and name are set", event)
		}
		host, repo = "ghcr.io", pkg.Owner.Login+"/"+pkg.Name
	}
	t := target{Registry: host, Repository: strings.ToLower(repo), Digest: d, Tag: tag}
	if cm := pv.ContainerMetadata; cm != nil {
		if tag == "" {
			t.Tag = cm.Tag.Name
		}
		if m := cm.Manifest; m != nil && m.Digest == string(d) && types.MediaType(m.MediaType).IsImage() {
			t.MediaType = m.MediaType
			descs := make([]layerDesc, 0, len(m.Layers))
			for _, l := range m.Layers {
				descs = append(descs, layerDesc{Digest: report.Digest(l.Digest), MediaType: l.MediaType, Size: l.Size})
			}
			if layers, ok := layersOf(m.Config.MediaType, descs); ok {
				t.Layers = layers
			}
		}
	}
	p.Targets = append(p.Targets, t)
	return p, nil
}
