package maintenance

import (
	"context"
	"time"

	"github.com/stevedore-dev/stevedore/report"
)

// Compact stores once up to limit usable reports stored twice, among those
// whose digests sort after after, and returns the last digest it looked at
// (empty at the end of a pass) and how many it compacted;
// *postgres.Store's CompactReports is one.
type Compact func(ctx context.Context, after report.Digest, limit int) (last report.Digest, compacted int, err error)

// NewCompactor returns the service that goes over the stored reports, one
// batch of at most Rate × Interval a round, and stores once the usable
// reports that the releases before migration 00025 stored twice (those
// stored before the upgrade, and those their replicas write during a
// rolling upgrade). After each whole pass it rests for rest, then starts
// over; it carries on from where it was after a failed round, and after
// being stopped and started again (the leader elected anew).
func NewCompactor(compact Compact, s Sweep, rest time.Duration) *Loop {
	const name = "compact stored reports"
	var (
		after     report.Digest
		total     int
		restUntil time.Time
	)
	return s.loop(name, func(ctx context.Context, limit int) (int, error) {
		if time.Now().Before(restUntil) {
			return 0, nil
		}
		last, n, err := compact(ctx, after, limit)
		if err != nil {
			return 0, err
		}
		total += n
		if last != "" {
			after = last
			return n, nil
		}
		if total > 0 {
			s.logger().InfoContext(ctx, name, "compacted", total)
		}
		after, total, restUntil = "", 0, time.Now().Add(rest)
		return n, nil
	})
}
