package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
)

// usableReportStoredOnce: a usable report's row holds its header only, and
// every way of reading the report (Report, Enqueue's locked report and its
// answer once a job is queued) gives back the whole report from its native
// answer; a row written with its content (before migration 00025, or by
// the release before it) is read from the row; a row whose answer is gone
// is an error naming it, not an empty report.
func usableReportStoredOnce(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	fin, pm := manifest("a", "1"), manifest("b", "1")
	partial := debianReport(pm.Hash, "1", "1.2", "libc6")
	partial.State = report.StateIndexPartial
	partial.Partial = []report.PartialReason{{Scanner: "rpm", Reason: "enrichment data missing"}}
	partial.Repositories["r"] = &report.Repository{ID: "r", Name: "debian", URI: "http://deb.example/debian"}
	for m, want := range map[*report.Manifest]*report.Report{fin: debianReport(fin.Hash, "1", "1.2", "libc6"), pm: partial} {
		t.Run(string(want.State), func(t *testing.T) {
			f := c.putManifest(t, "w", m)
			if err := st.FinishManifest(ctx, f, want, nil, []byte(`{"manifest":{}}`)); err != nil {
				t.Fatal(err)
			}
			if n := c.count(t, `SELECT count(*) FROM index_report WHERE manifest_hash = $1 AND (report ?| array['packages', 'distributions', 'repository', 'environments'])`, string(m.Hash)); n != 0 {
				t.Errorf("the row of a %s report holds its content", want.State)
			}
			if n := c.count(t, `SELECT count(*) FROM index_report WHERE manifest_hash = $1 AND report ? 'partial' = $2`, string(m.Hash), want.Partial != nil); n != 1 {
				t.Errorf("the row of a %s report lost its partial reasons (the partial listing reads them)", want.State)
			}
			got, err := st.Report(ctx, m.Hash)
			if err != nil {
				t.Fatal(err)
			}
			sameReport(t, "Report", got, want)
			// Enqueue of a report made by another scanner set locks it and
			// answers with all of it, queued or not.
			never := func(*report.Report) bool { return false }
			for _, queued := range []bool{false, true} {
				r, _, err := st.Enqueue(ctx, m.Hash, "s2", never, func(_ context.Context, stored *report.Report, _ bool) (bool, error) {
					sameReport(t, "the report Enqueue locked", stored, want)
					return queued, nil
				})
				if err != nil {
					t.Fatal(err)
				}
				sameReport(t, "Enqueue's report", r, want)
			}
			if n := c.count(t, `SELECT cardinality(record_ids) FROM manifest_record WHERE manifest_hash = $1`, string(m.Hash)); n != len(want.Packages) {
				t.Errorf("%d records listed, want %d", n, len(want.Packages))
			}
		})
	}

	// A row holding its content is read from it.
	old := debianReport(fin.Hash, "1", "3.0", "")
	c.storeWhole(t, old)
	got, err := st.Report(ctx, old.Hash)
	if err != nil {
		t.Fatal(err)
	}
	sameReport(t, "a row holding its content", got, old)

	// A row without content whose native answer is gone.
	gone := partial.Hash
	if _, err := c.pool.Exec(ctx, `DELETE FROM report_body WHERE manifest_hash = $1 AND view = 'native'`, string(gone)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Report(ctx, gone); err == nil || !strings.Contains(err.Error(), "native answer is missing") || !strings.Contains(err.Error(), string(gone)) {
		t.Fatalf("report whose native answer is gone: %v, want an error naming it", err)
	}
}

// enqueueWaitsForTheFinalWrite: a request for a report being finished
// waits for the final write's lock and reads the report that write
// committed, header and answer together (not the new row with the answer
// as it was before).
func enqueueWaitsForTheFinalWrite(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	m := manifest("c", "1")
	f := c.putManifest(t, "w", m)
	if err := st.FinishManifest(ctx, f, debianReport(m.Hash, "1", "1.1", ""), nil, nil); err != nil {
		t.Fatal(err)
	}
	want := debianReport(m.Hash, "1", "1.2", "libc6")
	type result struct {
		r   *report.Report
		err error
	}
	done := make(chan result, 1)
	// The final write takes the row's lock (as its upsert does), the
	// request comes and waits for it, and then the report is written and
	// committed.
	err := postgres.Fenced(st, ctx, f, func(tx pgx.Tx) error {
		var pid int
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid() FROM index_report WHERE manifest_hash = $1 FOR UPDATE`, string(m.Hash)).Scan(&pid); err != nil {
			return err
		}
		go func() {
			r, _, err := st.Enqueue(ctx, m.Hash, "s1", func(*report.Report) bool { return true }, nil)
			done <- result{r, err}
		}()
		for deadline := time.Now().Add(30 * time.Second); c.count(t, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`, pid) == 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				return errors.New("the request never waited for the final write's lock")
			}
		}
		return postgres.WriteReportExtra(st, ctx, tx, f, want, nil, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	sameReport(t, "the report Enqueue waited for", got.r, want)
}

// storeWhole writes r, whole, into the row of its report, as the release
// before migration 00025 stored it (updated_at kept).
func (c *conf) storeWhole(t *testing.T, r *report.Report) {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.pool.Exec(c.ctx, `UPDATE index_report SET report = $2::jsonb || jsonb_build_object('updated_at', updated_at) WHERE manifest_hash = $1`, string(r.Hash), raw); err != nil {
		t.Fatal(err)
	}
}

// sameReport fails unless got is want as stored (its JSON, but for
// updated_at, which the store sets).
func sameReport(t *testing.T, what string, got, want *report.Report) {
	t.Helper()
	if got.UpdatedAt.IsZero() {
		t.Errorf("%s: no updated_at", what)
	}
	w := *want
	w.UpdatedAt = got.UpdatedAt
	a, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("%s:\n got %s\nwant %s", what, a, b)
	}
}

// reportsCompacted: CompactReports goes over the usable reports in batches
// and stores once those stored twice (a row holding its content beside its
// native answer, as the release before migration 00025 wrote it), leaving
// what they read as, their answers, ETags and records as they were; a row
// without an answer keeps its content, and other reports are not touched.
func reportsCompacted(t *testing.T, c *conf) {
	ctx, st := c.ctx, c.st
	partial := debianReport(digest("d"), "1", "1.4", "")
	partial.State, partial.Partial = report.StateIndexPartial, []report.PartialReason{{Scanner: "rpm", Reason: "enrichment data missing"}}
	reports := map[string]*report.Report{
		"a": debianReport(digest("a"), "1", "1.1", "libc6"), // stored twice
		"b": debianReport(digest("b"), "1", "1.2", ""),      // whole, its answers gone
		"c": debianReport(digest("c"), "1", "1.3", ""),      // stored once already
		"d": partial,                                        // stored twice
	}
	failed := report.NewReport(digest("e"), report.StateIndexError)
	failed.Err = "boom"
	reports["e"] = failed
	for name, r := range reports {
		f := c.putManifest(t, "w", manifest(name, "1"))
		if err := st.FinishManifest(ctx, f, r, nil, nil); err != nil {
			t.Fatal(err)
		}
		switch name {
		case "a", "d":
			c.storeWhole(t, r)
		case "b":
			if _, err := c.pool.Exec(ctx, `DELETE FROM report_body WHERE manifest_hash = $1`, string(r.Hash)); err != nil {
				t.Fatal(err)
			}
			c.storeWhole(t, r)
		}
	}
	type stored struct {
		updated  string
		etags    string
		records  string
		byteSize int
	}
	look := func(d report.Digest) stored {
		t.Helper()
		var s stored
		err := c.pool.QueryRow(ctx, `
SELECT r.updated_at::text, pg_column_size(r.report),
       (SELECT coalesce(string_agg(b.view || b.etag, ',' ORDER BY b.view), '') FROM report_body b WHERE b.manifest_hash = r.manifest_hash),
       coalesce((SELECT record_ids::text FROM manifest_record m WHERE m.manifest_hash = r.manifest_hash), '')
  FROM index_report r WHERE r.manifest_hash = $1`, string(d)).Scan(&s.updated, &s.byteSize, &s.etags, &s.records)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := map[string]stored{}
	for name, r := range reports {
		before[name] = look(r.Hash)
	}
	var total, batches int
	for after := report.Digest(""); ; batches++ {
		last, n, err := st.CompactReports(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if last == "" {
			break
		}
		if last <= after {
			t.Fatalf("batch after %s ended at %s", after, last)
		}
		after = last
	}
	if total != 2 || batches != 2 {
		t.Errorf("%d reports compacted in %d batches, want 2 in 2 (4 usable reports, 2 a batch)", total, batches)
	}
	for name, r := range reports {
		got, err := st.Report(ctx, r.Hash)
		if err != nil {
			t.Fatal(err)
		}
		sameReport(t, "report "+name, got, r)
		b, a := before[name], look(r.Hash)
		if a.updated != b.updated || a.etags != b.etags || a.records != b.records {
			t.Errorf("report %s: stored %+v before, %+v after: more than its row's JSON changed", name, b, a)
		}
		isWhole := c.count(t, `SELECT count(*) FROM index_report WHERE manifest_hash = $1 AND report ? 'packages'`, string(r.Hash)) == 1
		if wantWhole := name == "b" || name == "e"; isWhole != wantWhole {
			t.Errorf("report %s: row holds its content: %v, want %v", name, isWhole, wantWhole)
		}
		if (name == "a" || name == "d") && a.byteSize >= b.byteSize {
			t.Errorf("report %s: row of %d bytes, %d before", name, a.byteSize, b.byteSize)
		}
	}
	// Nothing left: a second pass compacts nothing.
	if _, n, err := st.CompactReports(ctx, "", 10); err != nil || n != 0 {
		t.Fatalf("second pass: %d compacted, %v", n, err)
	}
}
