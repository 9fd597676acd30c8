package api

import (
	"context"

	"github.com/stevedore-dev/stevedore/internal/affected"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/report"
)

// Store is what the API's handlers need of storage: *postgres.Store
// implements it (internal/postgres's conformance suite and this package's
// tests hold its behaviour on a real database). New takes the concrete
// store, for its pool: the report waiter listens on it and /healthz pings
// it.
type Store interface {
	affected.Store
	// Report returns the stored report of d, or an error wrapping
	// postgres.ErrNotFound.
	Report(ctx context.Context, d report.Digest) (*report.Report, error)
	// OpenBody, BodyChunk and StoreBodies read and keep the stored
	// answers of terminal reports (internal/reportbody).
	OpenBody(ctx context.Context, d report.Digest, views, etags []string, anyETag bool) (*postgres.Body, error)
	BodyChunk(ctx context.Context, id int64, seq int) ([]byte, error)
	StoreBodies(ctx context.Context, r *report.Report, bodies []reportbody.Body) error
	// DeleteManifest removes a manifest's report and what only it used.
	DeleteManifest(ctx context.Context, d report.Digest) (bool, error)
	// ListPartial, RequestRetry and PartialStats show and retry partial
	// reports.
	ListPartial(ctx context.Context, limit int) ([]postgres.PartialSummary, error)
	RequestRetry(ctx context.Context, d report.Digest) (bool, error)
	PartialStats(ctx context.Context) ([]postgres.PartialStat, error)
}
