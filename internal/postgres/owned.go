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
// the hashes given) from the stored results of the given scanners: the
// union over scanners, sorted.
func loadOwnedFiles(b *pgx.Batch, hashes []string, scannerIDs []int64, byHash map[report.Digest]*StoredLayer) {
	loadRows(b, "owned files", `
SELECT l.hash, p.path
  FROM owned_files o
  JOIN layer l ON l.id = o.layer_id
  CROSS JOIN LATERAL unnest(o.paths) AS p(path)
 WHERE l.hash = ANY($1) AND o.scanner_id = ANY($2)
 GROUP BY l.hash, p.path
 ORDER BY 1, 2`, []any{hashes, scannerIDs}, byHash,
		func(p *string) []any { return []any{p} },
		func(l *StoredLayer, p *string) {
			if l != nil {
				l.Found.OwnedFiles = append(l.Found.OwnedFiles, *p)
			}
		})
}
