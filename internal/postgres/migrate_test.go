package postgres_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/report"
)

// A database migrated by the first release (migration 1 only) upgrades to
// the current schema: migrations already applied are never edited, so what
// later code needs comes in later migrations.
func TestUpgradeFromTheFirstSchema(t *testing.T) {
	ctx := context.Background()
	pool, _ := migrationsAt(ctx, t, 1)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	for _, col := range []struct{ table, column string }{
		{"scanned_layer", "files"},
		{"index_report", "waiting_for"},
		{"index_report", "reindex_requested"},
		{"scanner", "match_version"},
	} {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
 WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`, col.table, col.column).Scan(&n)
		if err != nil || n != 1 {
			t.Errorf("%s.%s missing after the upgrade (%v)", col.table, col.column, err)
		}
	}
	// And again: nothing left to do.
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

// Answers stored before migration 19 (their JSON as it is) are kept by it
// and read as content coding identity, their size the JSON's.
func TestAnswersStoredBeforeCompression(t *testing.T) {
	ctx := context.Background()
	pool, _ := migrationsAt(ctx, t, 18)
	st := postgres.New(pool)
	d := report.Digest("sha256:" + strings.Repeat("e", 64))
	l, err := leases.New(pool, "w", leases.WithTTL(time.Hour)).Acquire(ctx, string(d))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if err := st.WriteReport(ctx, postgres.Fence{Digest: d, Token: l.Fence}, report.NewReport(d, report.StateScanLayers)); err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"manifest_hash":"` + string(d) + `"}` + "\n")
	// As the code of migration 18 stored an answer.
	if _, err := pool.Exec(ctx, `
WITH b AS (
INSERT INTO report_body (manifest_hash, view, state, etag, size, chunks, report_updated_at)
SELECT $1, 'clair', r.state, '"t"', $2, 1, r.updated_at FROM index_report r WHERE r.manifest_hash = $1
RETURNING id)
INSERT INTO report_body_chunk (body_id, seq, data) SELECT b.id, 0, $3 FROM b`, string(d), len(data), data); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	b, err := st.OpenBody(ctx, d, []string{reportbody.ViewClair}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if b.Encoding != reportbody.EncodingIdentity || !bytes.Equal(b.First, data) || b.Size != int64(len(data)) || b.IdentitySize != int64(len(data)) || b.ETag != `"t"` {
		t.Fatalf("answer stored before migration 19: %+v, want identity, %d bytes", b, len(data))
	}
}

// During a rolling upgrade, workers of the release before migration 24 run
// on the migrated schema: their final write, which records the report's
// scanners in scanned_manifest, must still succeed (the table is emptied,
// not dropped), and the rows they leave are not read.
func TestPreviousReleaseWritesScannedManifest(t *testing.T) {
	ctx := context.Background()
	pool, _ := migrationsAt(ctx, t, 23)
	d := report.Digest("sha256:" + strings.Repeat("c", 64))
	insert := `INSERT INTO scanned_manifest (manifest_id, scanner_id)
SELECT m.id, s.id FROM manifest m, scanner s WHERE m.hash = $1
ON CONFLICT DO NOTHING`
	if _, err := pool.Exec(ctx, `INSERT INTO manifest (hash) VALUES ($1)`, string(d)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO scanner (name, version, kind) VALUES ('dpkg', '1', 'package')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, insert, string(d)); err != nil {
		t.Fatalf("before migration 24: %v", err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM scanned_manifest`).Scan(&n); err != nil || n != 0 {
		t.Errorf("after migration 24: %d rows (%v), want the table emptied", n, err)
	}
	if _, err := pool.Exec(ctx, insert, string(d)); err != nil {
		t.Errorf("the previous release's insert after migration 24: %v", err)
	}
}
