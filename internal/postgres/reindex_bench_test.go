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
		rs, err := st.ReportsToReindex(ctx, "cur", time.Hour, 1000)
		if err != nil || len(rs) != 25 {
			b.Fatalf("%d to re-index, %v; want the 25 asked for", len(rs), err)
		}
	}
}
