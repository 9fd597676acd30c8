package indexer_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/layer"
)

func TestPermanent(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"bad layer", fmt.Errorf("read: %w", layer.ErrBadLayer), true},
		{"scanner", fmt.Errorf("scan: %w", indexer.ErrScan), true},
		{"postgres refuses the data", fmt.Errorf("store results of layer x: %w", &pgconn.PgError{Code: "22021"}), true},
		{"postgres restarting", fmt.Errorf("store: %w", &pgconn.PgError{Code: "57P01"}), false},
		{"network", errors.New("connection reset by peer"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := indexer.Permanent(tc.err); got != tc.want {
				t.Fatalf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
