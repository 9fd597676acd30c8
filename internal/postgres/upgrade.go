package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The release before migration 00025 reads a usable report's content from
// its row (its SBOM, Harbor and scan-summary answers decode the row's
// JSON). During a rolling upgrade from it, its API replicas still serve
// while the new workers write: a row holding only its header would read as
// a report without packages there (an SBOM listing nothing, a Harbor scan
// finding nothing). So for a while after 00025 is applied to a database
// older than it, the store writes usable reports whole (header and content
// in the row, besides the answers) and the compactor leaves rows whole; after
// the window, rows are written as headers and the compactor stores once
// what the window wrote twice.

// upgradeState is a Store's upgrade window, read from the database once.
type upgradeState struct {
	window time.Duration // WithUpgradeWindow; zero: none

	mu    sync.Mutex
	read  bool      // until is known
	until time.Time // the window's end; zero when there is none
}

// WithUpgradeWindow makes the store write usable reports whole, and its
// compactor leave them so, for d after migration 00025 was applied to a
// database that is older than it (migrated more than a minute before it:
// not a fresh install, which no earlier release reads): the time a rolling
// upgrade from the release before it takes to replace that release's
// replicas. Zero (the default) writes headers at once.
func WithUpgradeWindow(d time.Duration) Option {
	return func(s *Store) { s.upgrade.window = d }
}

// upgradeWindowLeft is the time left of the upgrade window, $1 ms long, in
// ms: no row when migration 00025 came with the database's first
// migrations.
const upgradeWindowLeft = `
SELECT EXTRACT(EPOCH FROM u.tstamp + $1 * interval '1 millisecond' - localtimestamp) * 1000
  FROM (SELECT tstamp FROM goose_db_version WHERE version_id = 25 AND is_applied ORDER BY id DESC LIMIT 1) u
 WHERE u.tstamp > (SELECT min(tstamp) FROM goose_db_version WHERE version_id = 1) + interval '1 minute'`

// wholeRows reports whether usable reports are to be stored whole now: the
// upgrade window is open. The window's end is read through q (the writing
// transaction's connection: no second connection from the pool) the first
// time, and kept.
func (s *Store) wholeRows(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (bool, error) {
	u := &s.upgrade
	if u.window <= 0 {
		return false, nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.read {
		var left float64
		err := q.QueryRow(ctx, upgradeWindowLeft, u.window.Milliseconds()).Scan(&left)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return false, fmt.Errorf("read when migration 00025 was applied: %w", err)
		case left > 0:
			u.until = time.Now().Add(time.Duration(left * float64(time.Millisecond)))
		}
		u.read = true
	}
	return time.Now().Before(u.until), nil
}
