package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/report"
)

// A usable report (IndexFinished, IndexPartial) is stored once (migration
// 00025): its row's JSON is its header, without contentKeys, and its content
// is read from its stored native answer, written in the same transaction.
// Any other report's row holds all of it.

// contentKeys are the members of a report's JSON that a usable report's row
// goes without.
var contentKeys = []string{"packages", "distributions", "repository", "environments"}

// usable reports whether a report in state s is stored as a header and its
// native answer.
func usable(s report.State) bool {
	return s == report.StateIndexFinished || s == report.StateIndexPartial
}

// rowJSON returns the JSON of r's row and the members the statement writing
// it removes: for a report stored whole (every report but a usable one, and a
// usable one within the upgrade window), all of it and none; otherwise its
// header and contentKeys (left out of the JSON already).
func rowJSON(r *report.Report, whole bool) (raw []byte, drop []string, err error) {
	if whole {
		raw, err = json.Marshal(r)
		return raw, []string{}, err
	}
	h := *r
	h.Packages, h.Distributions, h.Repositories, h.Environments = nil, nil, nil, nil
	raw, err = json.Marshal(&h)
	return raw, contentKeys, err
}

// storedColumns reads a report row r joined with storedAnswer: its JSON,
// whether that holds its content, and, for a row without it, the coding and
// chunks of its native answer (NULL when there is none).
const storedColumns = `r.report, r.report ? 'packages', nb.encoding, nb.chunks`

// storedAnswer joins a report row r with the chunks of its native answer
// when the row goes without its content.
const storedAnswer = `
  LEFT JOIN LATERAL (
       SELECT b.encoding, array_agg(c.data ORDER BY c.seq) AS chunks
         FROM report_body b JOIN report_body_chunk c ON c.body_id = b.id
        WHERE b.manifest_hash = r.manifest_hash AND b.view = 'native' AND b.report_updated_at = r.updated_at
        GROUP BY b.id, b.encoding) nb ON NOT r.report ? 'packages'`

// scanStored reads the report of d from row (storedColumns).
func scanStored(row pgx.Row, d report.Digest) (*report.Report, error) {
	var (
		raw      []byte
		whole    bool
		encoding *string
		chunks   [][]byte
	)
	if err := row.Scan(&raw, &whole, &encoding, &chunks); err != nil {
		return nil, err
	}
	if whole {
		r := new(report.Report)
		if err := json.Unmarshal(raw, r); err != nil {
			return nil, fmt.Errorf("decode stored report for %s: %w", d, err)
		}
		return r, nil
	}
	if encoding == nil {
		return nil, fmt.Errorf("stored report for %s: its row holds no content and its native answer is missing", d)
	}
	rs := make([]io.Reader, len(chunks))
	for i, c := range chunks {
		rs[i] = bytes.NewReader(c)
	}
	r, err := reportbody.DecodeNative(*encoding, io.MultiReader(rs...))
	if err != nil {
		return nil, fmt.Errorf("stored report for %s: %w", d, err)
	}
	if r.Hash != d {
		return nil, fmt.Errorf("stored report for %s: its native answer is the report of %s", d, r.Hash)
	}
	return r, nil
}

// CompactReports stores once the usable reports that are stored twice: a
// row holding its content whose native answer, of the same write, holds it
// too (a report written before migration 00025, or by the release before
// it during a rolling upgrade) loses its content, and is read from its
// answer from then on; its updated_at, answers, ETags and records stay as
// they are. It looks at up to limit usable reports whose digests sort after
// after, in digest order, and returns the last digest it looked at (empty
// when there was none: the pass over the reports is done) and how many it
// compacted. A report written again meanwhile is left to its writer.
//
// Within the upgrade window (WithUpgradeWindow) it compacts nothing and
// returns at once, as at the end of a pass: the release before 00025 may
// still be reading the rows.
func (s *Store) CompactReports(ctx context.Context, after report.Digest, limit int) (last report.Digest, compacted int, err error) {
	if whole, err := s.wholeRows(ctx, s.pool); err != nil {
		return "", 0, fmt.Errorf("compact the stored reports: %w", err)
	} else if whole {
		return "", 0, nil
	}
	var l *string
	err = s.pool.QueryRow(ctx, `
WITH c AS (
    SELECT manifest_hash, updated_at, report ? 'packages' AS whole
      FROM index_report
     WHERE manifest_hash > $1 AND state IN ('IndexFinished', 'IndexPartial')
     ORDER BY manifest_hash LIMIT $2),
u AS (
    UPDATE index_report r SET report = r.report - $3::text[]
      FROM c
     WHERE r.manifest_hash = c.manifest_hash AND c.whole AND r.updated_at = c.updated_at
       AND r.report ? 'packages' AND r.state IN ('IndexFinished', 'IndexPartial')
       AND EXISTS (SELECT FROM report_body b
                    WHERE b.manifest_hash = r.manifest_hash AND b.view = 'native' AND b.report_updated_at = r.updated_at)
    RETURNING 1)
SELECT (SELECT max(manifest_hash) FROM c), (SELECT count(*) FROM u)`, string(after), limit, contentKeys).Scan(&l, &compacted)
	if err != nil {
		return "", 0, fmt.Errorf("compact the stored reports after %q: %w", after, err)
	}
	if l != nil {
		last = report.Digest(*l)
	}
	return last, compacted, nil
}
