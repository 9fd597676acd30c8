package postgres

import (
	"context"
	"fmt"

	"github.com/stevedore-dev/stevedore/report"
)

// CountPackages returns how many packages the scanners of scannerIDs found,
// in all, in the layers (a layer listed twice counts once): what
// LoadLayerResults would load, counted without loading it.
func (s *Store) CountPackages(ctx context.Context, layers []report.Digest, scannerIDs []int64) (int64, error) {
	hashes := make([]string, len(layers))
	for i, l := range layers {
		hashes[i] = string(l)
	}
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*)`+packagesOf, hashes, scannerIDs).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count packages: %w", err)
	}
	return n, nil
}
