package webhooks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/tick"
	"github.com/stevedore-dev/stevedore/report"
)

// PendingStore keeps the references whose lookup failed, for retries:
// *postgres.Store implements it (table webhook_pending; its conformance
// suite holds these promises on a real database).
type PendingStore interface {
	// AddWebhookPending records failed lookups: refs[i] failed with
	// errs[i], to be retried after delays[i]. A reference already pending
	// keeps its schedule; one given up is started again.
	AddWebhookPending(ctx context.Context, source string, refs, errs []string, delays []time.Duration) error
	// ClaimWebhookPending takes the most overdue row no other replica
	// holds, skipping the registries in skip, for lease; nil when none is
	// due.
	ClaimWebhookPending(ctx context.Context, lease time.Duration, skip []string) (*postgres.WebhookPending, error)
	// DeleteWebhookPending removes a row whose retry succeeded.
	DeleteWebhookPending(ctx context.Context, id int64) error
	// FailWebhookPending records one more failed attempt: the next after
	// delay, or none when giveUp.
	FailWebhookPending(ctx context.Context, id int64, lookupErr string, delay time.Duration, giveUp bool) error
}

// pendingStore keeps the references whose lookup failed in db (nil: no
// database, nothing is kept).
type pendingStore struct {
	db PendingStore
}

// pendingRow is a reference claimed for a retry.
type pendingRow struct {
	ID        int64
	Source    Source
	Reference string
	Attempts  int
}

var errNoDatabase = errors.New("no database to keep it in")

// addAll records the first failed lookups of one request, in one
// statement: refs[i] failed with errs[i] and is retried after delay(1). A
// reference already pending keeps its schedule; one that was given up is
// started again. The references are distinct.
func (p *pendingStore) addAll(ctx context.Context, src Source, refs, errs []string, delay func(int) time.Duration) error {
	if p.db == nil {
		return errNoDatabase
	}
	delays := make([]time.Duration, len(refs))
	for i := range delays {
		delays[i] = delay(1)
	}
	return p.db.AddWebhookPending(ctx, string(src), refs, errs, delays)
}

// claim takes the most overdue row that no other replica holds and moves
// its next attempt lease into the future, so that a replica that dies
// mid-attempt only delays it. Rows of the registries in skip (throttled)
// are left. nil: nothing is due.
func (p *pendingStore) claim(ctx context.Context, lease time.Duration, skip []string) (*pendingRow, error) {
	row, err := p.db.ClaimWebhookPending(ctx, lease, skip)
	if err != nil || row == nil {
		return nil, err
	}
	return &pendingRow{ID: row.ID, Source: Source(row.Source), Reference: row.Reference, Attempts: row.Attempts}, nil
}

// done removes a row whose retry succeeded.
func (p *pendingStore) done(ctx context.Context, id int64) error {
	return p.db.DeleteWebhookPending(ctx, id)
}

// failed records one more failed attempt: the next one after delay, or
// none when giveUp.
func (p *pendingStore) failed(ctx context.Context, id int64, lookupErr string, delay time.Duration, giveUp bool) error {
	return p.db.FailWebhookPending(ctx, id, lookupErr, delay, giveUp)
}

// backoff is the delay after the n-th failed attempt (n >= 1): RetryBase
// doubled n-1 times, at most RetryMax, with up to a fifth of jitter either
// way.
func (c *Config) backoff(n int) time.Duration {
	d := c.RetryBase
	for i := 1; i < n && d < c.RetryMax; i++ {
		d *= 2
	}
	d = min(d, c.RetryMax)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return max(d+jitter, time.Millisecond)
}

// RunRetries retries the stored lookups until ctx ends: every poll interval
// it takes each due row (one replica per row: rows are claimed with FOR
// UPDATE SKIP LOCKED, so every dispatcher replica can run the loop), at most
// RetryRate a second per registry (a registry over its rate is skipped
// until it has one again, and the others' rows go on),
// resolves and indexes the reference again, and then deletes the row or
// records the failure, its error and the next attempt with backoff. After
// MaxAttempts the row is kept, marked given up, for an operator to see; a
// new event for the same reference starts it again. It does nothing when no
// source is enabled.
func (h *Handler) RunRetries(ctx context.Context) {
	if !h.cfg.AnyEnabled() || h.pending.db == nil {
		return
	}
	for next := h.cfg.PollInterval; tick.Sleep(ctx, next); {
		next = h.retryDue(ctx)
	}
}

// retryDue retries the due rows, one at a time, until none is due or ctx
// ends, and returns how long to wait before looking again: the poll
// interval, or less when a throttled registry's rows may be due sooner.
func (h *Handler) retryDue(ctx context.Context) time.Duration {
	next := h.cfg.PollInterval
	for ctx.Err() == nil {
		skip, wait := h.limits.throttled(time.Now())
		did, err := h.retryOne(ctx, skip)
		if err != nil {
			if ctx.Err() == nil {
				h.log.ErrorContext(ctx, "webhook retries", "error", err)
			}
			break
		}
		if !did {
			if len(skip) > 0 {
				// Rows of a throttled registry may be due: look
				// again when it has a retry allowed.
				next = min(next, max(wait, time.Millisecond))
			}
			break
		}
	}
	return next
}

// retryOne retries one due row; false when none was due.
func (h *Handler) retryOne(ctx context.Context, skip []string) (bool, error) {
	row, err := h.pending.claim(ctx, 2*h.cfg.ResolveTimeout+time.Minute, skip)
	if err != nil || row == nil {
		return false, err
	}
	// Usually at once: the registry was not throttled when the row was
	// claimed (another goroutine of this process may have taken its
	// retry since).
	if err := h.limits.limiter(registryOf(row.Reference)).Wait(ctx); err != nil {
		return false, err
	}
	ctx, span := h.tracer.Start(ctx, "webhooks.retry")
	defer span.End()
	span.SetAttributes(attribute.String("stevedore.webhook.source", string(row.Source)),
		attribute.String("stevedore.webhook.reference", row.Reference),
		attribute.Int("stevedore.webhook.attempt", row.Attempts+1))
	rctx, cancel := context.WithTimeout(ctx, h.cfg.ResolveTimeout)
	defer cancel()
	imgs, err := h.retryReference(rctx, row.Reference)
	if ctx.Err() != nil {
		return false, ctx.Err() // shutting down: the claim lapses and another replica takes it
	}
	if err == nil {
		h.log.InfoContext(ctx, "webhook retry succeeded", "source", row.Source, "reference", row.Reference, "attempts", row.Attempts+1, "manifests", len(imgs))
		return true, h.pending.done(ctx, row.ID)
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	attempts := row.Attempts + 1
	giveUp := attempts >= h.cfg.MaxAttempts || errors.Is(err, resolve.ErrInvalid)
	delay := h.cfg.backoff(attempts)
	if giveUp {
		h.log.ErrorContext(ctx, "webhook retry: giving up", "source", row.Source, "reference", row.Reference, "attempts", attempts, "error", err)
	} else {
		h.log.WarnContext(ctx, "webhook retry failed", "source", row.Source, "reference", row.Reference, "attempts", attempts, "next_in", delay.Round(time.Millisecond), "error", err)
	}
	return true, h.pending.failed(ctx, row.ID, err.Error(), delay, giveUp)
}

// retryReference resolves a stored reference (a tag first to its digest)
// and indexes it.
func (h *Handler) retryReference(ctx context.Context, ref string) ([]report.Image, error) {
	if !strings.Contains(ref, "@") {
		d, err := h.resolveTag(ctx, ref)
		if err != nil {
			return nil, err
		}
		tag, err := name.NewTag(ref, name.StrictValidation)
		if err != nil {
			return nil, fmt.Errorf("pending reference %q: %w: %w", ref, resolve.ErrInvalid, err)
		}
		ref = tag.Context().Digest(d).String()
	}
	return h.d.IndexReference(ctx, ref, "")
}
