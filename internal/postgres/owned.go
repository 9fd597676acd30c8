package postgres

import (
	"github.com/jackc/pgx/v5"

	"github.com/stevedore-dev/stevedore/report"
)

// putOwnedFiles stores the files the packages a scanner found on a layer
// own (scanner.Result.OwnedFiles), as one row: the paths of an image's OS
// packages run to thousands, a text[] keeps them in one tuple.
func putOwnedFiles(b *batch, lid, sid int64, paths []string) {
	if len(paths) == 0 {
		return
	}
	b.queue("owned files", `
INSERT INTO owned_files (layer_id, scanner_id, paths) VALUES ($1, $2, $3)
ON CONFLICT (layer_id, scanner_id) DO NOTHING`, lid, sid, paths)
}

// loadOwnedFiles sets Found.OwnedFiles of the layers in byHash (keyed by
// the hashes of args, $1) from the stored results of the scanners of $2:
// the union over scanners, sorted; nothing when the packages are over the
// bound $3 (see withinLimit).
func loadOwnedFiles(b *pgx.Batch, args []any, byHash map[report.Digest]*StoredLayer) {
	loadRows(b, "owned files", `
SELECT l.hash, p.path
  FROM owned_files o
  JOIN layer l ON l.id = o.layer_id
  CROSS JOIN LATERAL unnest(o.paths) AS p(path)
 WHERE l.hash = ANY($1) AND o.scanner_id = ANY($2) AND `+withinLimit+`
 GROUP BY l.hash, p.path
 ORDER BY 1, 2`, args, byHash,
		func(p *string) []any { return []any{p} },
		func(l *StoredLayer, p *string) {
			if l != nil {
				l.Found.OwnedFiles = append(l.Found.OwnedFiles, *p)
			}
		})
}
