// Package webhooks turns registries' push events into index jobs: one HTTP
// endpoint per kind of registry, under /webhooks/.
//
//	POST /webhooks/distribution  CNCF Distribution and GitLab's registry: notification envelopes
//	                             (application/vnd.docker.distribution.events.v1+json and v2+json)
//	POST /webhooks/harbor        Harbor: Default (PUSH_ARTIFACT) and CloudEvents (harbor.artifact.pushed)
//	POST /webhooks/quay          Quay: repo_push notifications (tags, resolved to digests)
//	POST /webhooks/zot           zot: CloudEvents in binary mode (Ce-Type: zotregistry.image.updated)
//	POST /webhooks/ghcr          GitHub: package events of container packages (X-Hub-Signature-256)
//
// Every request is authenticated first (a token in the Authorization header,
// or GitHub's HMAC signature of the raw body, compared in constant time):
// 401 otherwise, and nothing is queued. A source without a configured secret
// is disabled: 404 saying which variable enables it. Then the body is bounded
// (413), its Content-Type checked (415) and the payload parsed (400 with the
// reason). An event naming a registry missing from the webhook registries,
// or whose pull host the registry allowlist refuses, is refused with 403
// before anything is queued. A well-formed event that is not an
// image push (a pull, a blob, a deleted tag, an npm package) is answered 200
// and ignored, so that the registry does not send it again.
//
// Events that carry a manifest digest are indexed through the dispatcher:
// when the event also carries the layer list (zot's manifest,
// Distribution's references, GitHub's container metadata) the job is built
// from it with no registry call; otherwise Dispatcher.IndexReference looks
// the digest up (one manifest GET, or one per platform for an image index)
// and queues one job per platform. Quay sends tags only: each is resolved to
// a digest with a HEAD request first; a tag the registry does not have (a
// 404 to HEAD and GET) is ignored with the reason and never retried. A
// lookup that fails otherwise (registry down,
// timeout) is not lost: it is stored in Postgres (table webhook_pending) and
// retried in the background with backoff by RunRetries (202 with the
// reference under "deferred"). Retries of one event and many tags of one
// digest lead to one job: the dispatcher publishes at most one pending job
// per digest.
package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/report"
)

// Dispatcher queues index jobs; *intake.Dispatcher is one.
type Dispatcher interface {
	// Index queues a job for m unless its report is current.
	Index(ctx context.Context, m *report.Manifest) (r *report.Report, queued bool, err error)
	// IndexReference resolves ref (one manifest per platform of an image
	// index) and indexes each manifest.
	IndexReference(ctx context.Context, ref, platform string) ([]report.Image, error)
	// AllowsRegistry reports whether index requests may name the registry
	// host (the registry allowlist, STEVEDORE_REGISTRY_ALLOWLIST).
	AllowsRegistry(host string) bool
}

// Handler serves the webhook endpoints and retries the lookups that
// failed.
type Handler struct {
	cfg     Config
	d       Dispatcher
	pending *pendingStore
	limits  *retryLimits
	log     *slog.Logger
	tracer  trace.Tracer
	mux     *http.ServeMux
}

// newPendingStore keeps failed lookups in the database of pool (nil: none).
func newPendingStore(pool *pgxpool.Pool) *pendingStore {
	if pool == nil {
		return &pendingStore{}
	}
	return &pendingStore{db: postgres.New(pool)}
}

// New returns the webhook endpoints for cfg, queueing through d and keeping
// failed lookups in the database of pool (migrated: table webhook_pending).
// tp traces each request and retry (nil: the global provider).
func New(cfg Config, d Dispatcher, pool *pgxpool.Pool, log *slog.Logger, tp trace.TracerProvider) *Handler {
	if log == nil {
		log = slog.Default()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	h := &Handler{
		cfg:     cfg.withDefaults(),
		d:       d,
		pending: newPendingStore(pool),
		limits:  newRetryLimits(cfg.withDefaults().RetryRate),
		log:     log,
		tracer:  tp.Tracer("github.com/stevedore-dev/stevedore/internal/api/webhooks"),
		mux:     http.NewServeMux(),
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	for _, src := range Sources() {
		pattern := "POST /webhooks/" + string(src)
		h.mux.Handle(pattern, otelhttp.NewHandler(h.endpoint(src), pattern, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop)))
	}
	h.mux.HandleFunc("/webhooks/", func(w http.ResponseWriter, r *http.Request) {
		names := make([]string, 0, len(Sources()))
		for _, s := range Sources() {
			names = append(names, "/webhooks/"+string(s))
			if r.URL.Path == "/webhooks/"+string(s) {
				w.Header().Set("Allow", http.MethodPost)
				apierr.Write(w, http.StatusMethodNotAllowed, "method-not-allowed", fmt.Sprintf("%s %s: webhooks are POSTed", r.Method, r.URL.Path))
				return
			}
		}
		apierr.Write(w, http.StatusNotFound, "not-found", fmt.Sprintf("no webhook endpoint at %s: the endpoints are POST %s", r.URL.Path, strings.Join(names, ", ")))
	})
	return h
}

// ServeHTTP serves /webhooks/...
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Mount returns a handler that serves /webhooks/ with h and every other
// path with api.
func (h *Handler) Mount(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", h)
	mux.Handle("/", api)
	return mux
}

// Response is the body of a 2xx answer.
type Response struct {
	Source Source `json:"source"`
	// Accepted lists the references given to the dispatcher and what it
	// did with each platform manifest (queued, or already indexed).
	Accepted []Accepted `json:"accepted,omitempty"`
	// Deferred lists the references whose registry lookup failed: they are
	// stored and retried in the background.
	Deferred []Deferred `json:"deferred,omitempty"`
	// Ignored says, for each event or reference not indexed, why.
	Ignored []string `json:"ignored,omitempty"`
}

// Accepted is a reference given to the dispatcher.
type Accepted struct {
	// Reference is the image as the event named it, on the pull host.
	Reference string `json:"reference"`
	// Resolved is the digest reference a tag resolved to.
	Resolved  string         `json:"resolved,omitempty"`
	Manifests []report.Image `json:"manifests"`
}

// Deferred is a reference kept for a later retry.
type Deferred struct {
	Reference string `json:"reference"`
	Error     string `json:"error"`
}

// acceptsContentType lists the request media types of each source.
func acceptsContentType(src Source, mt string) (bool, string) {
	switch src {
	case Distribution:
		return distributionContentType(mt), distributionEventsPrefix + "v1+json or v2+json"
	case Harbor:
		return harborContentType(mt), "application/json or application/cloudevents+json"
	case Zot:
		return mt == "application/json" || mt == "application/cloudevents+json", "application/json (binary-mode CloudEvent)"
	case GHCR:
		return ghcrContentType(mt), "application/json or application/x-www-form-urlencoded"
	}
	return mt == "application/json", "application/json"
}

func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, src Source, status int, code, msg string) {
	h.log.WarnContext(r.Context(), "webhook refused", "source", src, "status", status, "reason", msg, "remote", r.RemoteAddr)
	if status == http.StatusUnauthorized && !src.Signed() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stevedore webhooks"`)
	}
	apierr.Write(w, status, code, msg)
}

func (h *Handler) endpoint(src Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secret := h.cfg.Secrets[src]
		if secret == "" {
			h.refuse(w, r, src, http.StatusNotFound, "not-enabled", fmt.Sprintf("the %s webhook is not enabled on this server: set %s", src, src.SecretEnv()))
			return
		}
		if src.Signed() {
			// The signature is checked once the body is read; without one
			// there is no need to read it.
			if r.Header.Get("X-Hub-Signature-256") == "" {
				h.refuse(w, r, src, http.StatusUnauthorized, "unauthorized", checkSignature("", nil, secret).Error())
				return
			}
		} else if err := checkToken(r.Header.Get("Authorization"), secret); err != nil {
			h.refuse(w, r, src, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		}
		ct := r.Header.Get("Content-Type")
		if ok, want := acceptsContentType(src, mediaType(ct)); !ok {
			msg := fmt.Sprintf("Content-Type %q: want %s", ct, want)
			if ct == "" {
				msg = "Content-Type missing: want " + want
			}
			h.refuse(w, r, src, http.StatusUnsupportedMediaType, "unsupported-media-type", msg)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodySize))
		if err != nil {
			var big *http.MaxBytesError
			if errors.As(err, &big) {
				h.refuse(w, r, src, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("request body is larger than %d bytes", big.Limit))
				return
			}
			h.refuse(w, r, src, http.StatusBadRequest, "bad-request", "reading the request body: "+err.Error())
			return
		}
		if src.Signed() {
			if err := checkSignature(r.Header.Get("X-Hub-Signature-256"), body, secret); err != nil {
				h.refuse(w, r, src, http.StatusUnauthorized, "unauthorized", err.Error())
				return
			}
		}
		var p *payload
		switch src {
		case Distribution:
			p, err = parseDistribution(body)
		case Harbor:
			p, err = parseHarbor(body)
		case Quay:
			p, err = parseQuay(body)
		case Zot:
			p, err = parseZot(ct, r.Header.Get("Ce-Type"), r.Header.Get("Ce-Source"), body, h.cfg.ZotRegistry)
		case GHCR:
			p, err = parseGHCR(r.Header.Get("X-GitHub-Event"), ct, body)
		}
		if err != nil {
			h.refuse(w, r, src, http.StatusBadRequest, "bad-request", fmt.Sprintf("%s payload: %v", src, err))
			return
		}
		h.handle(w, r, src, p)
	}
}

// item is a target with the reference to pull it by.
type item struct {
	t    target
	repo name.Repository
	ref  string
}

func (h *Handler) handle(w http.ResponseWriter, r *http.Request, src Source, p *payload) {
	// Check every target before queueing any: a request is refused whole.
	var items []item
	seen := map[string]bool{}
	for _, t := range p.Targets {
		pull, ok := h.cfg.Registries.PullHost(t.Registry)
		if !ok {
			h.refuse(w, r, src, http.StatusForbidden, "registry-not-allowed", fmt.Sprintf("registry %q is not allowed: add it to STEVEDORE_WEBHOOK_REGISTRIES (now %q)", t.Registry, h.cfg.Registries.String()))
			return
		}
		if !h.d.AllowsRegistry(pull) {
			h.refuse(w, r, src, http.StatusForbidden, "registry-not-allowed", notAllowedMessage(t.Registry, pull))
			return
		}
		it, err := newItem(pull, t)
		if err != nil {
			h.refuse(w, r, src, http.StatusBadRequest, "bad-request", fmt.Sprintf("%s payload: %v", src, err))
			return
		}
		if !seen[it.ref] {
			seen[it.ref] = true
			items = append(items, it)
		}
	}
	if len(items) > h.cfg.MaxTargets {
		h.refuse(w, r, src, http.StatusRequestEntityTooLarge, "too-many-targets", fmt.Sprintf("the event names %d images, more than the limit of %d per event (STEVEDORE_WEBHOOK_MAX_TARGETS): nothing was queued; send them in smaller events", len(items), h.cfg.MaxTargets))
		return
	}
	resp := Response{Source: src, Ignored: p.Ignored}
	if !h.indexAll(w, r, src, items, &resp) {
		return
	}
	status := http.StatusOK
	if len(resp.Accepted) > 0 || len(resp.Deferred) > 0 {
		status = http.StatusAccepted
	}
	h.log.InfoContext(r.Context(), "webhook", "source", src, "accepted", len(resp.Accepted), "deferred", len(resp.Deferred), "ignored", len(resp.Ignored))
	apierr.WriteJSON(w, status, resp)
}

// notAllowedMessage says that the registry an event names (pulled from
// pull) is refused by the registry allowlist, and what to change.
func notAllowedMessage(registry, pull string) string {
	if pull == registry {
		return fmt.Sprintf("registry %q is not allowed: add it to STEVEDORE_REGISTRY_ALLOWLIST", registry)
	}
	return fmt.Sprintf("registry %q (pulled from %q) is not allowed: add %q to STEVEDORE_REGISTRY_ALLOWLIST", registry, pull, pull)
}

func newItem(pullHost string, t target) (item, error) {
	repo, err := name.NewRepository(pullHost+"/"+t.Repository, name.StrictValidation)
	if err != nil {
		return item{}, fmt.Errorf("repository %q: %w", t.Repository, err)
	}
	it := item{t: t, repo: repo}
	if t.Digest != "" {
		it.ref = repo.Digest(string(t.Digest)).String()
		return it, nil
	}
	tag, err := name.NewTag(repo.String()+":"+t.Tag, name.StrictValidation)
	if err != nil {
		return item{}, fmt.Errorf("tag %q: %w", t.Tag, err)
	}
	it.ref = tag.String()
	return it, nil
}

// indexItem gives one reference to the dispatcher: a job built from the
// event's layer list, or the digest looked up through the registry (a tag
// first resolved to its digest).
func (h *Handler) indexItem(ctx context.Context, it item) (Accepted, error) {
	acc := Accepted{Reference: it.ref}
	if len(it.t.Layers) > 0 {
		m := &report.Manifest{Hash: it.t.Digest}
		for _, l := range it.t.Layers {
			m.Layers = append(m.Layers, &report.Layer{Hash: l.Digest, URI: resolve.BlobURL(it.repo, string(l.Digest)), MediaType: l.MediaType, Size: l.Size})
		}
		rep, queued, err := h.d.Index(ctx, m)
		if err != nil {
			return acc, fmt.Errorf("index %s: %w", it.ref, err)
		}
		acc.Manifests = []report.Image{{Digest: m.Hash, State: rep.State, Queued: queued}}
		return acc, nil
	}
	ref := it.ref
	if it.t.Digest == "" {
		d, err := h.resolveTag(ctx, it.ref)
		if err != nil {
			return acc, err
		}
		ref = it.repo.Digest(d).String()
		acc.Resolved = ref
	}
	imgs, err := h.d.IndexReference(ctx, ref, "")
	if err != nil {
		return acc, err
	}
	acc.Manifests = imgs
	return acc, nil
}

// resolveTag returns the digest a tag points to (Config.Tags: a HEAD
// request, or a GET when the registry's HEAD answer has no digest), through
// the registry client. A tag the registry does not have is an error
// wrapping resolve.ErrInvalid: the reference is ignored, not retried.
func (h *Handler) resolveTag(ctx context.Context, ref string) (string, error) {
	return h.cfg.Tags.Digest(ctx, ref)
}

// checkToken compares the credentials of an Authorization header with the
// configured token, in constant time: "Bearer <token>", basic credentials
// whose password is the token (any user name), or the token alone (what
// Harbor sends when its Auth Header holds just the token).
func checkToken(header, token string) error {
	if header == "" {
		return errors.New("missing Authorization header: want \"Bearer <token>\", or basic credentials whose password is the token")
	}
	cand := header
	if scheme, rest, ok := strings.Cut(header, " "); ok {
		switch strings.ToLower(scheme) {
		case "bearer":
			cand = strings.TrimSpace(rest)
		case "basic":
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
			if err != nil {
				return errors.New("the basic credentials in the Authorization header are not valid base64")
			}
			_, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return errors.New("the basic credentials in the Authorization header are not user:password")
			}
			cand = pass
		}
	}
	if !equalSecret(cand, token) {
		return errors.New("the credentials in the Authorization header do not match the configured token")
	}
	return nil
}

// equalSecret compares in constant time, whatever the lengths.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// checkSignature verifies GitHub's X-Hub-Signature-256 header: "sha256="
// and the hex HMAC-SHA256 of the raw body keyed with the webhook secret.
func checkSignature(header string, body []byte, secret string) error {
	if header == "" {
		return errors.New("missing X-Hub-Signature-256 header: set the webhook's secret in GitHub")
	}
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return errors.New("X-Hub-Signature-256: want sha256=<hex HMAC-SHA256 of the body>")
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return errors.New("X-Hub-Signature-256: not a hex SHA-256 HMAC")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("X-Hub-Signature-256: the signature does not match the body signed with the configured secret")
	}
	return nil
}
