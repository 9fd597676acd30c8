package indexer

import (
	"context"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// Store is what the indexer needs of storage: *postgres.Store implements it
// (its conformance suite, internal/postgres, holds each promise below on a
// real database). Every write under a fence is refused, with an error
// wrapping leases.ErrLost, once the fence no longer holds the manifest's
// lease.
type Store interface {
	// RegisterScanners returns the ids of the scanners, in order, making
	// rows for new ones.
	RegisterScanners(ctx context.Context, infos []scanner.Info) ([]int64, error)
	// Report returns the stored report of d, or an error wrapping
	// postgres.ErrNotFound.
	Report(ctx context.Context, d report.Digest) (*report.Report, error)
	// WriteReport replaces the report of r.Hash under fence f.
	WriteReport(ctx context.Context, f postgres.Fence, r *report.Report) error
	// PutManifestReport records m and its ordered layers under fence f
	// and, when r is not nil, writes r in the same transaction.
	PutManifestReport(ctx context.Context, f postgres.Fence, m *report.Manifest, r *report.Report) error
	// MissingScans returns, per layer, the positions in scannerIDs of the
	// scanners without stored results on it; complete layers are absent.
	MissingScans(ctx context.Context, layers []report.Digest, scannerIDs []int64) (map[report.Digest][]int, error)
	// LayerNeeds is MissingScans that also says, in the same round trip,
	// whether CarryOverEmpty may record anything on the layers (carry):
	// when not, the missing scans are final.
	LayerNeeds(ctx context.Context, layers []report.Digest, scannerIDs []int64) (missing map[report.Digest][]int, carry bool, err error)
	// CarryOverEmpty records empty results for new scanner versions on
	// layers where an older version with the same match version was given
	// no file; it returns how many it recorded.
	CarryOverEmpty(ctx context.Context, f postgres.Fence, layers []report.Digest, scannerIDs []int64) (int64, error)
	// PutLayerResults stores what was read from one layer; results stored
	// before for a (layer, scanner) are kept.
	PutLayerResults(ctx context.Context, f postgres.Fence, lr *postgres.LayerResults) error
	// LoadLayerResultsWithin returns the stored results of the scanners
	// on the layers, in the order of layers, merged per layer, and the
	// number of packages they hold (a layer listed twice counts once);
	// when that number is over maxPackages, it returns no layers and
	// loads no package.
	LoadLayerResultsWithin(ctx context.Context, layers []report.Digest, scannerIDs []int64, maxPackages int64) ([]*postgres.StoredLayer, int64, error)
	// FinishManifest stores the final (finished or partial) report, in
	// one transaction.
	FinishManifest(ctx context.Context, f postgres.Fence, r *report.Report, waitingFor []string, job []byte) error
}
