package postgres_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/postgres"
)

// Writers that store, at the same moment, reports holding the same
// packages none stored before race to insert the same affected records:
// each report must still list every one of its records (a writer that
// waited on another's insert reads the committed record in its next
// statement), and each record is stored once.
func concurrentWritersShareNewRecords(t *testing.T, c *conf) {
	const writers, packages, rounds = 6, 40, 5
	for round := range rounds {
		fences := make([]postgres.Fence, writers)
		for w := range writers {
			fences[w] = c.putManifest(t, "w", manifest(fmt.Sprintf("%d-%d", round, w), "1"))
		}
		start := make(chan struct{})
		errs := make(chan error, writers)
		var wg sync.WaitGroup
		for _, f := range fences {
			wg.Go(func() {
				<-start
				// Every writer's report has the same packages, new in
				// this round (the versions end in the round).
				errs <- c.st.FinishManifest(c.ctx, f, benchReport(f.Digest, packages, round), nil, nil)
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		for _, f := range fences {
			if n := c.count(t, `SELECT cardinality(record_ids) FROM manifest_record WHERE manifest_hash = $1`, string(f.Digest)); n != packages {
				t.Errorf("round %d, %s lists %d records, want %d", round, f.Digest, n, packages)
			}
		}
	}
	if n := c.count(t, `SELECT count(*) FROM affected_record`); n != packages*rounds {
		t.Errorf("%d records stored, want %d (each once)", n, packages*rounds)
	}
}
