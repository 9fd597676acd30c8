package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// BenchmarkMarkReindexQueued: the re-index sweep's marking of a batch of
// 1,000 finished reports, one statement for the batch (what the sweep does)
// against one per report (what it did: a round trip and a commit each).
// Compare the two ns/op of one run (-count interleaves them).
//
//	go test -run '^$' -bench MarkReindexQueued -count 3 ./internal/postgres/
func BenchmarkMarkReindexQueued(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.Pool(b)
	st := postgres.New(pool)
	const n = 1000
	_, err := pool.Exec(ctx, `
INSERT INTO index_report (manifest_hash, state, scanner_state, report)
SELECT 'sha256:' || lpad(to_hex(i), 64, '0'), 'IndexFinished', 'cur', '{}'
  FROM generate_series(1, $1) AS i`, n)
	if err != nil {
		b.Fatal(err)
	}
	ds := make([]report.Digest, n)
	for i := range ds {
		ds[i] = report.Digest(fmt.Sprintf("sha256:%064x", i+1))
	}
	b.Run("batch", func(b *testing.B) {
		for b.Loop() {
			if err := st.MarkReindexQueued(ctx, ds); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-per-report", func(b *testing.B) {
		for b.Loop() {
			for _, d := range ds {
				if err := st.MarkReindexQueued(ctx, []report.Digest{d}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkReportsToReindexIdle: one round of the re-index sweep (every
// second by default) over 100,000 finished reports of the current scanner
// set, none to re-index, and 25 an operator asked for.
//
//	go test -run '^$' -bench ReportsToReindexIdle ./internal/postgres/
func BenchmarkReportsToReindexIdle(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.Pool(b)
	st := postgres.New(pool)
	_, err := pool.Exec(ctx, `
INSERT INTO index_report (manifest_hash, state, scanner_state, report, job, reindex_requested)
SELECT 'sha256:' || lpad(to_hex(i), 64, '0'), 'IndexFinished', 'cur', jsonb_build_object('pad', repeat('x', 300)), '{}', i % 4000 = 0
  FROM generate_series(1, 100000) AS i`)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE index_report`); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rs, err := st.ReportsToReindex(ctx, "cur", time.Hour, nil, 1000)
		if err != nil || len(rs) != 25 {
			b.Fatalf("%d to re-index, %v; want the 25 asked for", len(rs), err)
		}
	}
}

// BenchmarkSweepBatches: a whole re-index sweep (ReportsToReindex and
// MarkReindexQueued in batches of 1,000, each after the last of the one
// before, as the sweep does without its rate limit and publishing) over
// 10,000 and 40,000 finished reports of an older scanner set. ns/report
// stays flat with the fleet when a batch's cost does not grow with the
// reports queued before it; compare the two sizes' ns/report of one run.
//
//	go test -run '^$' -bench SweepBatches -count 3 ./internal/postgres/
func BenchmarkSweepBatches(b *testing.B) {
	for _, n := range []int{10000, 40000} {
		b.Run(fmt.Sprintf("reports=%d", n), func(b *testing.B) {
			ctx := context.Background()
			pool := pgtest.Pool(b)
			st := postgres.New(pool)
			_, err := pool.Exec(ctx, `
INSERT INTO index_report (manifest_hash, state, scanner_state, report, job, requested_at)
SELECT 'sha256:' || lpad(to_hex(i), 64, '0'), 'IndexFinished', 'old', jsonb_build_object('pad', repeat('x', 300)), '{}',
       now() - i * interval '1 second'
  FROM generate_series(1, $1) AS i`, n)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				for _, q := range []string{`UPDATE index_report SET reindex_queued_at = NULL`, `VACUUM ANALYZE index_report`} {
					if _, err := pool.Exec(ctx, q); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				if got := sweepAll(ctx, b, st); got != n {
					b.Fatalf("swept %d reports; want %d", got, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/report")
		})
	}
}

// sweepAll finds and marks every report to re-index in batches of 1,000,
// and returns how many.
func sweepAll(ctx context.Context, b *testing.B, st *postgres.Store) int {
	n := 0
	var after *postgres.Reindex
	for {
		rs, err := st.ReportsToReindex(ctx, "cur", time.Hour, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(rs) == 0 {
			return n
		}
		ds := make([]report.Digest, len(rs))
		for i, r := range rs {
			ds[i] = r.Digest
		}
		if err := st.MarkReindexQueued(ctx, ds); err != nil {
			b.Fatal(err)
		}
		n += len(rs)
		after = &rs[len(rs)-1]
	}
}
