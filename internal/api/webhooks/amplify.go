package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
)

// errNotLookedUp is the error of a reference whose lookup did not start
// before the request's resolve timeout ended.
var errNotLookedUp = errors.New("not looked up: the request's resolve timeout ended first")

// outcome is what became of one item of a request.
type outcome struct {
	acc Accepted
	err error
}

// indexAll gives the items to the dispatcher, at most ResolveConcurrency at
// once, all under one ResolveTimeout; the items not done by then are stored
// for the background retries in one statement. It fills resp and reports
// true, or answers the request itself and reports false.
func (h *Handler) indexAll(w http.ResponseWriter, r *http.Request, src Source, items []item, resp *Response) bool {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.ResolveTimeout)
	defer cancel()
	out := make([]outcome, len(items))
	var g errgroup.Group
	g.SetLimit(h.cfg.ResolveConcurrency)
	for i, it := range items {
		if ctx.Err() != nil {
			out[i].err = errNotLookedUp
			continue
		}
		g.Go(func() error {
			if ctx.Err() != nil {
				out[i].err = errNotLookedUp
				return nil
			}
			out[i].acc, out[i].err = h.indexItem(ctx, it)
			return nil
		})
	}
	g.Wait()
	if r.Context().Err() != nil {
		return false // the registry hung up
	}
	var defRefs, defErrs []string
	for i, it := range items {
		switch err := out[i].err; {
		case err == nil:
			resp.Accepted = append(resp.Accepted, out[i].acc)
		case errors.Is(err, intake.ErrRegistryNotAllowed):
			// Checked before the lookups; a registry the dispatcher
			// refuses all the same is refused whole too, never ignored:
			// the registry must send the event again once the allowlist
			// is fixed.
			h.refuse(w, r, src, http.StatusForbidden, "registry-not-allowed", fmt.Sprintf("%s: %v: add the registry to STEVEDORE_REGISTRY_ALLOWLIST", it.ref, err))
			return false
		case errors.Is(err, resolve.ErrInvalid):
			resp.Ignored = append(resp.Ignored, fmt.Sprintf("%s: %v", it.ref, err))
		default:
			defRefs = append(defRefs, it.ref)
			defErrs = append(defErrs, err.Error())
		}
	}
	if len(defRefs) == 0 {
		return true
	}
	if err := h.pending.addAll(r.Context(), src, defRefs, defErrs, h.cfg.backoff); err != nil {
		h.log.ErrorContext(r.Context(), "webhook: cannot keep failed lookups for retry", "source", src, "references", len(defRefs), "first", defRefs[0], "lookup_error", defErrs[0], "error", err)
		apierr.Write(w, http.StatusServiceUnavailable, "unavailable", fmt.Sprintf("%d lookups failed (first: %s: %s), and they could not be kept for a retry: %v", len(defRefs), defRefs[0], defErrs[0], err))
		return false
	}
	// One line per request, not per reference.
	h.log.WarnContext(r.Context(), "webhook: lookups failed, retried later", "source", src, "references", len(defRefs), "first", defRefs[0], "error", defErrs[0])
	for i, ref := range defRefs {
		resp.Deferred = append(resp.Deferred, Deferred{Reference: ref, Error: defErrs[i]})
	}
	return true
}

// retryLimits are the per-registry rate limits of the background retries.
type retryLimits struct {
	rate  rate.Limit
	burst int

	mu sync.Mutex
	by map[string]*rate.Limiter
}

func newRetryLimits(perSecond float64) *retryLimits {
	return &retryLimits{rate: rate.Limit(perSecond), burst: max(1, int(perSecond)), by: map[string]*rate.Limiter{}}
}

// registryOf is the registry part of a stored reference (host[:port]/repo...),
// as postgres.Store.ClaimWebhookPending computes it in SQL.
func registryOf(ref string) string {
	host, _, _ := strings.Cut(ref, "/")
	return host
}

func (l *retryLimits) limiter(registry string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.by[registry]
	if lim == nil {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.by[registry] = lim
	}
	return lim
}

// throttled returns the registries with no retry allowed now, and how long
// until the first of them has one.
func (l *retryLimits) throttled(now time.Time) (regs []string, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for reg, lim := range l.by {
		if lim.TokensAt(now) >= 1 {
			continue
		}
		regs = append(regs, reg)
		d := time.Duration((1 - lim.TokensAt(now)) / float64(l.rate) * float64(time.Second))
		if wait == 0 || d < wait {
			wait = d
		}
	}
	return regs, wait
}
