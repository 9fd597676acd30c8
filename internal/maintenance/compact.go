package maintenance

import (
	"context"
	"log/slog"
	"time"

	"github.com/stevedore-dev/stevedore/internal/tick"
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
// over; it carries on from where it was after a failed round.
func NewCompactor(compact Compact, s Sweep, rest time.Duration) *Loop {
	limit := max(1, int(float64(s.Rate)*s.Interval.Seconds()))
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	const name = "compact stored reports"
	return NewLoop(name, func(ctx context.Context) {
		var (
			after     report.Digest
			total     int
			restUntil time.Time
		)
		tick.Every(ctx, s.Interval, func() {
			if time.Now().Before(restUntil) {
				return
			}
			last, n, err := compact(ctx, after, limit)
			if err != nil {
				if ctx.Err() == nil {
					log.WarnContext(ctx, name, "error", err)
				}
				return
			}
			total += n
			if last != "" {
				after = last
				return
			}
			if total > 0 {
				log.InfoContext(ctx, name, "compacted", total)
			}
			after, total, restUntil = "", 0, time.Now().Add(rest)
		})
	})
}
