package maintenance

import (
	"context"
	"log/slog"

	"github.com/stevedore-dev/stevedore/internal/api/webhooks"
	"github.com/stevedore-dev/stevedore/internal/enrich"
)

// NewWebhookRetrier returns the service that retries the webhook lookups
// that failed (webhooks.Handler.RunRetries: every poll interval, at most its
// retry rate a second per registry).
func NewWebhookRetrier(h *webhooks.Handler) *Loop {
	return NewLoop("webhook retries", h.RunRetries)
}

// NewUpdater returns the service that keeps enrichment data current
// (enrich.Updater.Run: every source at once, then every interval).
func NewUpdater(u *enrich.Updater, log *slog.Logger) *Loop {
	if log == nil {
		log = slog.Default()
	}
	return NewLoop("enrichment updater", func(ctx context.Context) {
		if err := u.Run(ctx); err != nil {
			log.ErrorContext(ctx, "enrichment updater", "error", err)
		}
	})
}
