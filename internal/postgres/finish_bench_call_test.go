package postgres_test

import (
	"context"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
)

// finishBench is the benchmark's final write (FinishManifest's arguments
// differ between trees compared).
func finishBench(ctx context.Context, st *postgres.Store, f postgres.Fence, r *report.Report) error {
	return st.FinishManifest(ctx, f, r, nil, nil)
}
