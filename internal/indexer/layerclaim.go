package indexer

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
)

// Fetching each layer once across the fleet.
//
// A layer whose results for every current scanner are stored is not
// fetched (index, via Store.MissingScans). A layer that is needed is fetched
// under a claim (Config.Claims, internal/layer/claim): one job in the fleet reads
// it while the others that need it at the same moment wait, then look at
// the stored results again and usually find them. The results are written
// by whoever reads the layer, under its own manifest's lease fence, as
// always.
//
// A layer served from the local blob cache whose bytes turn out not to
// match its digest fails the read with fetch.ErrCacheCorrupt (the copy is
// removed by then); it is read once more, from its registry.

func (ix *Indexer) initMetrics() {
	mp := ix.cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	// The name is a valid constant: creation does not fail.
	ix.skipped, _ = mp.Meter("github.com/stevedore-dev/stevedore/internal/indexer").Int64Counter("stevedore.indexer.layers_skipped",
		metric.WithUnit("{layer}"),
		metric.WithDescription("Layers not fetched because every current scanner's results were stored (reason: stored, found before fetching; claimed, stored by another worker while this one waited)"))
}

// countSkipped counts the distinct layers of digests that are not missing.
func (ix *Indexer) countSkipped(ctx context.Context, digests []report.Digest, missing map[report.Digest][]int) {
	seen := map[report.Digest]bool{}
	n := 0
	for _, d := range digests {
		if !seen[d] {
			seen[d] = true
			if _, ok := missing[d]; !ok {
				n++
			}
		}
	}
	if n > 0 {
		ix.skipped.Add(ctx, int64(n), metric.WithAttributes(attribute.String("reason", "stored")))
	}
}

// claimAndScan fetches and scans layer l for the scanners need (indexes into
// the scanner set) under the layer's claim, unless its results are stored
// by the time the claim is held.
func (ix *Indexer) claimAndScan(ctx context.Context, f postgres.Fence, l *report.Layer, need []int) error {
	run := func(ctx context.Context) error {
		err := ix.scanLayer(ctx, f, l, need)
		if errors.Is(err, fetch.ErrCacheCorrupt) && ctx.Err() == nil {
			ix.log.WarnContext(ctx, "the cached copy of a layer did not match its digest; fetching it from its registry", "layer", l.Hash, "error", err)
			err = ix.scanLayer(ctx, f, l, need)
		}
		return err
	}
	if ix.cfg.Claims == nil {
		return run(ctx)
	}
	needed := func(ctx context.Context) (bool, error) {
		missing, err := ix.cfg.Store.MissingScans(ctx, []report.Digest{l.Hash}, ix.ids)
		if err != nil {
			return false, err
		}
		n, ok := missing[l.Hash]
		if !ok {
			ix.skipped.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", "claimed")))
			ix.log.DebugContext(ctx, "layer scanned by another worker meanwhile; not fetched", "layer", l.Hash)
			return false, nil
		}
		need = n
		return true, nil
	}
	_, err := ix.cfg.Claims.Do(ctx, string(l.Hash), needed, run)
	return err
}
