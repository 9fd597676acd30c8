package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// Store reads and writes Stevedore's tables.
type Store struct {
	pool *pgxpool.Pool
	// answers compresses the answers of terminal reports as they are
	// written.
	answers reportbody.Compressor
	// upgrade is the window in which usable reports are stored whole
	// (WithUpgradeWindow).
	upgrade upgradeState
}

// Option configures a Store.
type Option func(*Store)

// New returns a Store on a migrated pool (see Connect).
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Pool returns the underlying pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Fence identifies the lease a worker writes under.
type Fence struct {
	Digest report.Digest
	Token  int64
}

// fenced runs fn in a transaction that first checks, and locks, the lease.
func (s *Store) fenced(ctx context.Context, f Fence, fn func(pgx.Tx) error) error {
	return s.fencedTx(ctx, pgx.TxOptions{}, f, nil, fn)
}

// fencedNoSync is fenced for a write that a later durable commit of the same
// run always follows (see noSync).
func (s *Store) fencedNoSync(ctx context.Context, f Fence, fn func(pgx.Tx) error) error {
	return s.fencedTx(ctx, pgx.TxOptions{BeginQuery: beginNoSync}, f, nil, fn)
}

// fencedTx runs, in a transaction, the check of the lease (leases.Check)
// and the statements first queues (when not nil) in one round trip, then
// fn. The statements of first run whatever the check finds, but a failed
// check fails the transaction: nothing is committed.
func (s *Store) fencedTx(ctx context.Context, opts pgx.TxOptions, f Fence, first func(*pgx.Batch), fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, opts, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		leases.QueueCheck(b, string(f.Digest), f.Token)
		if first != nil {
			first(b)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if fn == nil {
			return nil
		}
		return fn(tx)
	})
}

// noSync makes the transaction it runs in commit without waiting for
// Postgres to flush its WAL to disk (a flush is a few milliseconds). It is
// used for the writes of a run that come before its final report (the
// manifest, the intermediate states, the layers' results) and for the
// request's record of a queued job: each is followed, within the run, by a
// durable commit (the final report, FinishManifest or an IndexError one,
// which for the request's record waits for the row's lock) and the WAL is
// flushed in order, so
// that commit makes every earlier one durable too. A crash of Postgres
// before it may lose them with the run, as if the run had not got that
// far: its job is not acked yet and runs again; results that another job
// read meanwhile are made durable by that job's own final commit. Visibility
// and locking are unchanged (the fence is checked as before). It is sent with
// the transaction's BEGIN (beginNoSync: one round trip).
const noSync = `SET LOCAL synchronous_commit = off`

// beginNoSync begins a transaction that commits as noSync says.
const beginNoSync = `BEGIN; ` + noSync

// Report returns the stored report of a manifest, or ErrNotFound.
func (s *Store) Report(ctx context.Context, d report.Digest) (*report.Report, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+storedColumns+` FROM index_report r`+storedAnswer+` WHERE r.manifest_hash = $1`, string(d))
	r, err := scanStored(row, d)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("report for %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read report for %s: %w", d, err)
	}
	return r, nil
}

// Publish is called by Enqueue, under the lock of the manifest's report
// row, to queue a job. stored is the report as it is (a new CheckManifest
// report when there was none, fresh says so). It returns whether a job is
// now pending for the manifest; an error or false leaves the row as it was.
type Publish func(ctx context.Context, stored *report.Report, fresh bool) (queued bool, err error)

// Enqueue decides whether manifest d needs a job and queues it, serialised
// with the workers' writes of its report: it locks the report row (creating
// a CheckManifest row when there is none), returns the stored report without
// publishing when current says it needs no run, and otherwise calls publish
// while still holding the lock. A worker's final write waits for the lock,
// and the worker acks its job only after that write, so a request that races
// the end of a job either sees the final report (and publishes nothing) or
// publishes while that job is still pending (and queues nothing new: one
// pending job per digest). What the request records (requested_at; an
// IndexError report reset to CheckManifest; a new row) is committed only if
// the publish queued a job, so a failed publish leaves no report waiting for
// a job that does not exist.
func (s *Store) Enqueue(ctx context.Context, d report.Digest, scannerState string, current func(*report.Report) bool, publish Publish) (r *report.Report, queued bool, err error) {
	fresh := report.NewReport(d, report.StateCheckManifest)
	fresh.ScannerState = scannerState
	raw, err := json.Marshal(fresh)
	if err != nil {
		return nil, false, fmt.Errorf("queue %s: %w", d, err)
	}
	// The transaction is driven by hand on one connection, its statements
	// sent in two round trips: BEGIN with the row's insert and lock, then,
	// after the publish, the request's record with the COMMIT.
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("queue %s: %w", d, err)
	}
	// A connection left in a transaction (an error on the way) is closed
	// by the pool when it is released.
	defer conn.Release()
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()
	r, inserted, err := lockForEnqueue(ctx, conn, d, scannerState, raw)
	if err != nil {
		return nil, false, fmt.Errorf("queue %s: %w", d, err)
	}
	if !inserted && current(r) {
		return r, false, nil
	}
	queued, err = publish(ctx, r, inserted)
	if err != nil || !queued {
		return r, false, err
	}
	if r, err = recordRequest(ctx, conn, d, r, scannerState, raw); err != nil {
		// The job is queued; its worker writes the report.
		return nil, false, fmt.Errorf("queue %s: record the request: %w", d, err)
	}
	committed = true
	return r, true, nil
}

// lockForEnqueue begins Enqueue's transaction on conn, inserts the report
// row of d (fresh, the encoded CheckManifest report) when there is none and
// locks it, in one round trip; it returns the stored report and whether the
// row was inserted.
func lockForEnqueue(ctx context.Context, conn *pgxpool.Conn, d report.Digest, scannerState string, fresh []byte) (*report.Report, bool, error) {
	// The job is in the queue before the commit; its worker's final
	// report, a durable commit that waits for this row's lock, follows
	// (noSync).
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(noSync)
	var inserted bool
	b.Queue(`
INSERT INTO index_report (manifest_hash, state, scanner_state, report, fence, requested_at)
VALUES ($1, 'CheckManifest', $2, $3::jsonb || jsonb_build_object('updated_at', now()), 0, now())
ON CONFLICT (manifest_hash) DO NOTHING
RETURNING true`, string(d), scannerState, fresh).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&inserted); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return nil
	})
	// Locked, then read by a statement of its own: its snapshot, taken
	// once the lock is held, sees the row and its answer as the last writer
	// committed them (a row locked by a statement that also joins the
	// answer would be its newest version joined with the answer as it was
	// when that statement began).
	b.Queue(`SELECT FROM index_report WHERE manifest_hash = $1 FOR UPDATE`, string(d))
	var r *report.Report
	b.Queue(`SELECT `+storedColumns+` FROM index_report r`+storedAnswer+` WHERE r.manifest_hash = $1`, string(d)).QueryRow(func(row pgx.Row) (err error) {
		if r, err = scanStored(row, d); err != nil {
			return fmt.Errorf("lock report: %w", err)
		}
		return nil
	})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, false, err
	}
	return r, inserted, nil
}

// recordRequest records a request that queued a job for d, whose report
// lockForEnqueue returned as locked (requested_at; an IndexError report
// reset to fresh, CheckManifest), and commits Enqueue's transaction, in one
// round trip; it returns the report as recorded.
func recordRequest(ctx context.Context, conn *pgxpool.Conn, d report.Digest, locked *report.Report, scannerState string, fresh []byte) (*report.Report, error) {
	var out []byte
	b := &pgx.Batch{}
	b.Queue(`
UPDATE index_report AS r SET
    requested_at  = now(),
    state         = CASE WHEN r.state = 'IndexError' THEN 'CheckManifest' ELSE r.state END,
    scanner_state = CASE WHEN r.state = 'IndexError' THEN $2 ELSE r.scanner_state END,
    error         = CASE WHEN r.state = 'IndexError' THEN '' ELSE r.error END,
    report        = CASE WHEN r.state = 'IndexError' THEN $3::jsonb || jsonb_build_object('updated_at', now()) ELSE r.report END,
    updated_at    = CASE WHEN r.state = 'IndexError' THEN now() ELSE r.updated_at END
WHERE manifest_hash = $1
RETURNING report`, string(d), scannerState, fresh).QueryRow(func(row pgx.Row) error { return row.Scan(&out) })
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	if locked.State != report.StateIndexError {
		// Unchanged but for requested_at, which the JSON does not hold
		// (and a usable report's row holds only its header).
		return locked, nil
	}
	r := new(report.Report)
	if err := json.Unmarshal(out, r); err != nil {
		return nil, fmt.Errorf("decode report: %w", err)
	}
	return r, nil
}

// WriteReport stores r as the report of its manifest under fence f. It is
// refused (an error wrapping leases.ErrLost) when f no longer holds the lease,
// and never overwrites a report written under a newer fence.
func (s *Store) WriteReport(ctx context.Context, f Fence, r *report.Report) error {
	write := func(tx pgx.Tx) error { return s.writeReport(ctx, tx, f, r) }
	if r.State.Terminal() {
		return s.fenced(ctx, f, write)
	}
	// An intermediate state: the final report follows it (noSync).
	return s.fencedNoSync(ctx, f, write)
}

func (s *Store) writeReport(ctx context.Context, tx pgx.Tx, f Fence, r *report.Report) error {
	return s.writeReportExtra(ctx, tx, f, r, nil, nil)
}

// writeReportExtra writes r with, for a partial report, the data it waits
// for and the job to run again (nil job: keep the stored one).
func (s *Store) writeReportExtra(ctx context.Context, tx pgx.Tx, f Fence, r *report.Report, waitingFor []string, job []byte) error {
	// A usable report's row holds its header; its content is in its
	// native answer, written below (stored.go). Within the upgrade window
	// it holds the whole report too (upgrade.go).
	whole := !usable(r.State)
	if !whole {
		var err error
		if whole, err = s.wholeRows(ctx, tx); err != nil {
			return fmt.Errorf("write report for %s: %w", r.Hash, err)
		}
	}
	row, drop, err := rowJSON(r, whole)
	if err != nil {
		return fmt.Errorf("write report for %s: %w", r.Hash, err)
	}
	// The job is kept at rest without the request's credentials.
	if job, err = withoutSecrets(job); err != nil {
		return fmt.Errorf("write report for %s: %w", r.Hash, err)
	}
	var updated []byte
	err = tx.QueryRow(ctx, `
INSERT INTO index_report AS r (manifest_hash, state, scanner_state, report, fence, attempt, error, next_retry, waiting_for, job, updated_at)
VALUES ($1, $2, $3, ($4::jsonb - $11::text[]) || jsonb_build_object('updated_at', now()), $5, $6, $7, $8, $9, $10::jsonb, now())
ON CONFLICT (manifest_hash) DO UPDATE SET
    state = excluded.state, scanner_state = excluded.scanner_state, report = excluded.report,
    fence = excluded.fence, attempt = excluded.attempt, error = excluded.error,
    next_retry = excluded.next_retry, waiting_for = excluded.waiting_for,
    job = coalesce(excluded.job, r.job), updated_at = now()
WHERE r.fence <= excluded.fence
RETURNING r.report->'updated_at'`,
		string(r.Hash), string(r.State), r.ScannerState, row, f.Token, r.Attempt, r.Err, r.NextRetry, nonNil(waitingFor), nullJSON(job), drop).Scan(&updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("write %s report for %s with fence %d: a newer fence wrote it: %w", r.State, r.Hash, f.Token, leases.ErrLost)
	}
	if err != nil {
		return fmt.Errorf("write %s report for %s: %w", r.State, r.Hash, err)
	}
	// The answers the API serves are stored with a terminal report, in
	// this transaction (internal/reportbody); any other write removes those of
	// the report it replaces.
	if !r.State.Terminal() {
		return deleteBodies(ctx, tx, r.Hash)
	}
	// In the same transaction, and in the statement that removes the old
	// answers: listeners hear of the report only once it is committed, and
	// always when it is (internal/postgres/reportwait). A usable report's
	// records (migrations 00023, 00026), which its row no longer holds, are
	// put by the same statement.
	q, args := `
WITH gone AS (DELETE FROM report_body WHERE manifest_hash = $2)
SELECT pg_notify($1, $2)`, []any{ReportChannel, string(r.Hash)}
	if usable(r.State) {
		rl := reportRecords(r)
		q = q + `, stevedore_put_record_list($2, $3::bytea[], $4::text[], $5::text[], $6::text[])`
		args = append(args, rl.hashes, rl.names, rl.sources, rl.bodies)
	}
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("remove the stored answers of %s and notify its %s report: %w", r.Hash, r.State, err)
	}
	return writeStored(ctx, tx, &s.answers, r, updated)
}

// ReportChannel is the Postgres notification channel on which the digest of
// every manifest whose report became terminal (IndexFinished, IndexPartial,
// IndexError) is sent, in the transaction that writes the report.
const ReportChannel = "stevedore_report_terminal"

// AnswerChannel is the Postgres notification channel on which the digest of
// every manifest whose stored answer, or report row, is written or removed
// is sent, by triggers (migration 00022), in the writing transaction; an
// empty digest when the tables are truncated.
const AnswerChannel = "stevedore_answer_changed"

// DeleteManifest removes a manifest's report and the rows only it referenced
// (its layer list and the layers no other manifest uses, with their scan
// results). Layers shared with other manifests keep their results. It reports
// whether there was anything to delete.
func (s *Store) DeleteManifest(ctx context.Context, d report.Digest) (bool, error) {
	var found bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM index_report WHERE manifest_hash = $1`, string(d))
		if err != nil {
			return err
		}
		found = tag.RowsAffected() > 0
		rows, err := tx.Query(ctx, `
DELETE FROM manifest_layer ml USING manifest m
 WHERE ml.manifest_id = m.id AND m.hash = $1
RETURNING ml.layer_id`, string(d))
		if err != nil {
			return err
		}
		layerIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		tag, err = tx.Exec(ctx, `DELETE FROM manifest WHERE hash = $1`, string(d))
		if err != nil {
			return err
		}
		found = found || tag.RowsAffected() > 0
		_, err = tx.Exec(ctx, `
DELETE FROM layer l WHERE l.id = ANY($1)
   AND NOT EXISTS (SELECT 1 FROM manifest_layer ml WHERE ml.layer_id = l.id)`, layerIDs)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("delete manifest %s: %w", d, err)
	}
	return found, nil
}

// PutManifest records a manifest and its ordered layers under fence f.
func (s *Store) PutManifest(ctx context.Context, f Fence, m *report.Manifest) error {
	return s.PutManifestReport(ctx, f, m, nil)
}

// PutManifestReport is PutManifest that also writes r (when not nil) as the
// manifest's report, as WriteReport does, in the same transaction.
func (s *Store) PutManifestReport(ctx context.Context, f Fence, m *report.Manifest, r *report.Report) error {
	hashes := make([]string, len(m.Layers))
	for i, l := range m.Layers {
		hashes[i] = string(l.Hash)
	}
	sorted := slices.Clone(hashes)
	slices.Sort(sorted)
	// The run's final report follows (noSync). One round trip: the
	// manifest's statements are sent with the fence's check, run in order;
	// then the report.
	first := func(b *pgx.Batch) {
		b.Queue(`
INSERT INTO manifest (hash) VALUES ($1)
ON CONFLICT (hash) DO UPDATE SET hash = excluded.hash`, string(m.Hash))
		b.Queue(`
INSERT INTO layer (hash) SELECT unnest($1::text[]) ON CONFLICT (hash) DO NOTHING`, slices.Compact(sorted))
		b.Queue(`DELETE FROM manifest_layer WHERE manifest_id = (SELECT id FROM manifest WHERE hash = $1)`, string(m.Hash))
		b.Queue(`
INSERT INTO manifest_layer (manifest_id, layer_id, position)
SELECT m.id, l.id, t.pos - 1
  FROM manifest m, unnest($2::text[]) WITH ORDINALITY AS t(hash, pos)
  JOIN layer l ON l.hash = t.hash
 WHERE m.hash = $1`, string(m.Hash), hashes)
	}
	var write func(pgx.Tx) error
	if r != nil {
		write = func(tx pgx.Tx) error { return s.writeReport(ctx, tx, f, r) }
	}
	err := s.fencedTx(ctx, pgx.TxOptions{BeginQuery: beginNoSync}, f, first, write)
	if err != nil {
		return fmt.Errorf("record manifest %s: %w", m.Hash, err)
	}
	return nil
}

// RegisterScanners makes sure each scanner has a row and returns their ids,
// in the order given.
func (s *Store) RegisterScanners(ctx context.Context, infos []scanner.Info) ([]int64, error) {
	// Most starts find every scanner registered as it is: one read, no
	// write to commit.
	if ids, err := s.registeredScanners(ctx, infos); err != nil || ids != nil {
		return ids, err
	}
	ids := make([]int64, len(infos))
	for i, in := range infos {
		err := s.pool.QueryRow(ctx, `
INSERT INTO scanner (name, version, kind, match_version) VALUES ($1, $2, $3, $4)
ON CONFLICT (name, version, kind) DO UPDATE SET match_version = excluded.match_version
RETURNING id`, in.Name, in.Version, string(in.Kind), in.MatchVersion).Scan(&ids[i])
		if err != nil {
			return nil, fmt.Errorf("register scanner %s %s: %w", in.Name, in.Version, err)
		}
	}
	return ids, nil
}

// registeredScanners returns the ids of the scanners, in order, when each
// has a row as it is (match version included); nil when one has not.
func (s *Store) registeredScanners(ctx context.Context, infos []scanner.Info) ([]int64, error) {
	cols := make([][]string, 4)
	for _, in := range infos {
		cols[0], cols[1] = append(cols[0], in.Name), append(cols[1], in.Version)
		cols[2], cols[3] = append(cols[2], string(in.Kind)), append(cols[3], in.MatchVersion)
	}
	rows, err := s.pool.Query(ctx, `
SELECT t.pos, s.id
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(name, version, kind, match_version, pos)
  JOIN scanner s ON s.name = t.name AND s.version = t.version AND s.kind = t.kind AND s.match_version = t.match_version`,
		cols[0], cols[1], cols[2], cols[3])
	if err != nil {
		return nil, fmt.Errorf("look up registered scanners: %w", err)
	}
	ids := make([]int64, len(infos))
	found := 0
	for rows.Next() {
		var pos, id int64
		if err := rows.Scan(&pos, &id); err != nil {
			return nil, fmt.Errorf("look up registered scanners: %w", err)
		}
		if pos < 1 || pos > int64(len(ids)) || ids[pos-1] != 0 {
			return nil, fmt.Errorf("look up registered scanners: unexpected position %d", pos)
		}
		ids[pos-1] = id
		found++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up registered scanners: %w", err)
	}
	if found < len(infos) {
		return nil, nil
	}
	return ids, nil
}

// MissingScans returns, for each of the given layers, which of the scanners
// (by position in scannerIDs) have no stored results for it. Layers with
// complete results are absent from the map.
func (s *Store) MissingScans(ctx context.Context, layers []report.Digest, scannerIDs []int64) (map[report.Digest][]int, error) {
	missing, _, err := s.LayerNeeds(ctx, layers, scannerIDs)
	return missing, err
}

// LayerNeeds is MissingScans that also says, from the same query, whether
// CarryOverEmpty may record anything on the layers (carry: another scanner
// was given no file in one of them). When not, as for new layers, the
// missing scans are final.
func (s *Store) LayerNeeds(ctx context.Context, layers []report.Digest, scannerIDs []int64) (missing map[report.Digest][]int, carry bool, err error) {
	hashes := make([]string, len(layers))
	for i, l := range layers {
		hashes[i] = string(l)
	}
	rows, err := s.pool.Query(ctx, `
SELECT l.hash, sl.scanner_id
  FROM layer l JOIN scanned_layer sl ON sl.layer_id = l.id
 WHERE l.hash = ANY($1) AND (sl.scanner_id = ANY($2) OR cardinality(sl.files) = 0)`, hashes, scannerIDs)
	if err != nil {
		return nil, false, fmt.Errorf("look up stored layer results: %w", err)
	}
	have := map[string]map[int64]bool{}
	for rows.Next() {
		var h string
		var id int64
		if err := rows.Scan(&h, &id); err != nil {
			return nil, false, fmt.Errorf("look up stored layer results: %w", err)
		}
		if !slices.Contains(scannerIDs, id) {
			carry = true // another scanner's empty result
			continue
		}
		if have[h] == nil {
			have[h] = map[int64]bool{}
		}
		have[h][id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("look up stored layer results: %w", err)
	}
	out := map[report.Digest][]int{}
	for _, l := range layers {
		for i, id := range scannerIDs {
			if !have[string(l)][id] {
				out[l] = append(out[l], i)
			}
		}
	}
	return out, carry, nil
}

// CarryOverEmpty records, under fence f, empty results for the given
// scanners on the given layers wherever another version of the same scanner,
// with the same non-empty match version, was given no file in that layer:
// the layer holds nothing for them and need not be read. It returns how many
// (layer, scanner) results it recorded.
func (s *Store) CarryOverEmpty(ctx context.Context, f Fence, layers []report.Digest, scannerIDs []int64) (int64, error) {
	hashes := make([]string, len(layers))
	for i, l := range layers {
		hashes[i] = string(l)
	}
	// Most runs have nothing to carry over (new layers, or no new
	// scanner version): a read, with the fence, tells so without a write
	// transaction (and its commit).
	var held, any bool
	err := s.pool.QueryRow(ctx, `
SELECT coalesce((SELECT expires_at > now() FROM lease WHERE digest = $3 AND fence = $4), false),
       EXISTS (SELECT 1`+carryOverFrom+`
                  AND NOT EXISTS (SELECT 1 FROM scanned_layer x WHERE x.layer_id = sl.layer_id AND x.scanner_id = cur.id))`, hashes, scannerIDs, string(f.Digest), f.Token).Scan(&held, &any)
	if err != nil {
		return 0, fmt.Errorf("carry over empty layer results: %w", err)
	}
	if !held {
		return 0, fmt.Errorf("carry over empty layer results: write for %s with fence %d refused: %w", f.Digest, f.Token, leases.ErrLost)
	}
	if !any {
		return 0, nil
	}
	var n int64
	// The run's final report follows (noSync).
	err = s.fencedNoSync(ctx, f, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
INSERT INTO scanned_layer (layer_id, scanner_id, files)
SELECT DISTINCT sl.layer_id, cur.id, '{}'::text[]`+carryOverFrom+`
ON CONFLICT DO NOTHING`, hashes, scannerIDs)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("carry over empty layer results: %w", err)
	}
	return n, nil
}

// carryOverFrom selects, for CarryOverEmpty, the layers among $1 (hashes)
// where a scanner of $2 (ids) can take over another version's empty result.
const carryOverFrom = `
  FROM scanned_layer sl
  JOIN scanner old ON old.id = sl.scanner_id
  JOIN scanner cur ON cur.name = old.name AND cur.kind = old.kind
                  AND cur.match_version = old.match_version AND cur.match_version <> ''
                  AND cur.id <> old.id
  JOIN layer l ON l.id = sl.layer_id
 WHERE l.hash = ANY($1) AND cur.id = ANY($2) AND cardinality(sl.files) = 0`

// ScanResult is one scanner's results on one layer.
type ScanResult struct {
	ScannerID int64
	// Files are the paths of the files the scanner was given.
	Files  []string
	Result *scanner.Result
}

// LayerResults is what was read from one layer: its whiteouts and each
// scanner's results.
type LayerResults struct {
	Digest     report.Digest
	Whiteouts  []string
	OpaqueDirs []string
	Scans      []ScanResult
}

// PutLayerResults stores the results of scanners on a layer, under fence f.
// Results already stored for a (layer, scanner) are left as they are: the same
// scanner version on the same bytes finds the same things.
func (s *Store) PutLayerResults(ctx context.Context, f Fence, lr *LayerResults) error {
	// The run's final report follows (noSync); so does that of any run
	// that reads these results. The layer's row and its scanners' are
	// written with the fence's check (one round trip), then what the
	// scanners found (one more).
	scanned, err := queueScanned(lr.Digest, lr.Scans)
	if err != nil {
		return fmt.Errorf("store results of layer %s: %w", lr.Digest, err)
	}
	var lid int64
	added := map[int64]bool{}
	first := func(b *pgx.Batch) {
		b.Queue(`
INSERT INTO layer (hash, whiteouts, opaque_dirs, read_at) VALUES ($1, $2, $3, now())
ON CONFLICT (hash) DO UPDATE SET whiteouts = excluded.whiteouts, opaque_dirs = excluded.opaque_dirs, read_at = now()
RETURNING id`, string(lr.Digest), nonNil(lr.Whiteouts), nonNil(lr.OpaqueDirs)).QueryRow(func(row pgx.Row) error { return row.Scan(&lid) })
		scanned(b, added)
	}
	err = s.fencedTx(ctx, pgx.TxOptions{BeginQuery: beginNoSync}, f, first, func(tx pgx.Tx) error {
		b := &batch{}
		for _, sr := range lr.Scans {
			if !added[sr.ScannerID] || sr.Result == nil {
				continue // stored before
			}
			putPackages(b, lid, sr.ScannerID, sr.Result.Packages)
			putDists(b, lid, sr.ScannerID, sr.Result.Distributions)
			putRepos(b, lid, sr.ScannerID, sr.Result.Repositories)
			putOwnedFiles(b, lid, sr.ScannerID, sr.Result.OwnedFiles)
		}
		return b.run(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store results of layer %s: %w", lr.Digest, err)
	}
	return nil
}

// queueScanned returns a function that queues, on a batch, the statement
// that records which scanners read layer d (its row written before, in the
// same transaction) and the files each was given, and that adds to added the
// scanners recorded by it (not before).
func queueScanned(d report.Digest, scans []ScanResult) (func(b *pgx.Batch, added map[int64]bool), error) {
	ids := make([]int64, len(scans))
	files := make([]string, len(scans))
	for i, sr := range scans {
		ids[i] = sr.ScannerID
		// A text[] per scanner, as one json array each: Postgres has no
		// ragged arrays.
		b, err := json.Marshal(nonNil(sr.Files))
		if err != nil {
			return nil, err
		}
		files[i] = string(b)
	}
	return func(b *pgx.Batch, added map[int64]bool) {
		b.Queue(`
INSERT INTO scanned_layer (layer_id, scanner_id, files)
SELECT (SELECT id FROM layer WHERE hash = $1), t.id, ARRAY(SELECT jsonb_array_elements_text(t.files::jsonb))
  FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS t(id, files, pos)
 ORDER BY t.pos
ON CONFLICT DO NOTHING
RETURNING scanner_id`, string(d), ids, files).Query(func(rows pgx.Rows) error {
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			for _, id := range ids {
				added[id] = true
			}
			return err
		})
	}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// contentKey hashes fields into a content address.
func contentKey(fields ...string) []byte {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

func pkgFields(p *report.Package) []string {
	var sn, sv string
	if p.Source != nil {
		sn, sv = p.Source.Name, p.Source.Version
	}
	return []string{p.Name, p.Version, p.Kind, p.Arch, p.Module, p.NormalizedVersion, p.CPE, p.PURL, sn, sv}
}

// batch is statements sent in one round trip, each named for its error.
type batch struct {
	b    pgx.Batch
	what []string
}

func (b *batch) queue(what, sql string, args ...any) {
	b.b.Queue(sql, args...)
	b.what = append(b.what, what)
}

// run sends the statements in tx and returns the first error, wrapped with
// what failed.
func (b *batch) run(ctx context.Context, tx pgx.Tx) error {
	if len(b.what) == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, &b.b)
	for _, what := range b.what {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return br.Close()
}

// putPackages queues the packages scanner sid found on layer lid.
func putPackages(b *batch, lid, sid int64, pkgs []*report.Package) {
	if len(pkgs) == 0 {
		return
	}
	// Columns, sorted by key so that concurrent writers lock rows in the
	// same order.
	type row struct {
		key    []byte
		fields []string
		db     string
		hint   string
		file   string
	}
	rs := make([]row, len(pkgs))
	for i, p := range pkgs {
		f := pkgFields(p)
		rs[i] = row{key: contentKey(f...), fields: f, db: p.PackageDB, hint: p.RepositoryHint, file: p.Filepath}
	}
	slices.SortFunc(rs, func(a, b row) int { return strings.Compare(string(a.key), string(b.key)) })
	keys := make([][]byte, len(rs))
	cols := make([][]string, 10)
	dbs, hints, files := make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs))
	for i, r := range rs {
		keys[i] = r.key
		for c := range cols {
			cols[c] = append(cols[c], r.fields[c])
		}
		dbs[i], hints[i], files[i] = r.db, r.hint, r.file
	}
	b.queue("packages", `
INSERT INTO package (key, name, version, kind, arch, module, normalized_version, cpe, purl, source_name, source_version)
SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
ORDER BY 1
ON CONFLICT (key) DO NOTHING`, keys, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9])
	// A statement of its own: it sees the rows concurrent writers
	// committed meanwhile.
	b.queue("packages", `
INSERT INTO package_scanartifact (layer_id, scanner_id, package_id, package_db, repository_hint, filepath)
SELECT $1, $2, p.id, t.db, t.hint, t.file
  FROM unnest($3::bytea[], $4::text[], $5::text[], $6::text[]) AS t(key, db, hint, file)
  JOIN package p ON p.key = t.key
ON CONFLICT DO NOTHING`, lid, sid, keys, dbs, hints, files)
}

// putDists queues the distributions scanner sid found on layer lid.
func putDists(b *batch, lid, sid int64, ds []*report.Distribution) {
	for _, d := range ds {
		f := []string{d.DID, d.Name, d.Version, d.VersionCodeName, d.VersionID, d.Arch, d.CPE, d.PrettyName}
		key := contentKey(f...)
		b.queue("distributions", `
INSERT INTO dist (key, did, name, version, version_code_name, version_id, arch, cpe, pretty_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (key) DO NOTHING`,
			key, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7])
		// A statement of its own: it sees a row a concurrent writer
		// committed.
		b.queue("distributions", `
INSERT INTO dist_scanartifact (layer_id, scanner_id, dist_id)
SELECT $1, $2, id FROM dist WHERE key = $3 ON CONFLICT DO NOTHING`, lid, sid, key)
	}
}

// putRepos queues the repositories scanner sid found on layer lid.
func putRepos(b *batch, lid, sid int64, rs []*report.Repository) {
	for _, r := range rs {
		f := []string{r.Name, r.Key, r.URI, r.CPE}
		key := contentKey(f...)
		b.queue("repositories", `
INSERT INTO repo (key, name, rkey, uri, cpe) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING`,
			key, f[0], f[1], f[2], f[3])
		b.queue("repositories", `
INSERT INTO repo_scanartifact (layer_id, scanner_id, repo_id)
SELECT $1, $2, id FROM repo WHERE key = $3 ON CONFLICT DO NOTHING`, lid, sid, key)
	}
}

// FinishManifest stores the final report of a manifest (finished or
// partial) under fence f. For a partial report, waitingFor names the
// enrichment data it waits for and job is the job to run again.
func (s *Store) FinishManifest(ctx context.Context, f Fence, r *report.Report, waitingFor []string, job []byte) error {
	return s.fenced(ctx, f, func(tx pgx.Tx) error {
		return s.writeReportExtra(ctx, tx, f, r, waitingFor, job)
	})
}

func nullJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}
