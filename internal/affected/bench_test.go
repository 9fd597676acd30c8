package affected_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stevedore-dev/stevedore/internal/affected"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// benchManifests is the number of stored reports of the benchmark.
const benchManifests = 10_000

// BenchmarkAffected measures affected-manifest questions on 10,000 stored
// reports, made of the test images (Debian 12, Ubuntu 18.04, Alpine 3.10,
// Python, Java, Go, npm: 10,000 / 7 of each, each under its own digest),
// against a GET of one report from the same store:
//
//	go test ./internal/affected -run '^$' -bench Affected -benchtime 20x
func BenchmarkAffected(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.Pool(b)
	st := postgres.New(pool)
	imgs := images(b)
	names := []string{"debian", "ubuntu", "alpine", "python", "java", "go", "npm"}
	fillBenchReports(ctx, b, pool, imgs, names)
	var one string
	pool.QueryRow(ctx, `SELECT manifest_hash FROM index_report WHERE report->'packages' @? '$.* ? (@.name == "perl-base")' LIMIT 1`).Scan(&one)

	vulns := loadAdvisories(b)
	byID := map[string]affected.Vulnerability{}
	for _, v := range vulns {
		byID[v.ID] = v
	}
	chunk := notifierChunk(b, byID["ubuntu-match"], imgs["ubuntu"])
	f := affected.New(st, nil)
	for _, c := range []struct {
		name  string
		vulns []affected.Vulnerability
		want  int // affected manifests
	}{
		{"one-hit-1429", []affected.Vulnerability{byID["ubuntu-match"]}, benchManifests / len(names)},
		{"one-miss", []affected.Vulnerability{byID["ubuntu-fixed-below"]}, 0},
		{"one-absent-name", []affected.Vulnerability{{ID: "x", Package: &affected.Package{Name: "absent"}}}, 0},
		{"chunk-1000", chunk, benchManifests / len(names)},
		{"all-advisories", vulns, benchManifests},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				ans, err := f.Affected(ctx, c.vulns)
				if err != nil {
					b.Fatal(err)
				}
				if len(ans.VulnerableManifests) < c.want-len(names) || len(ans.VulnerableManifests) > c.want+len(names) {
					b.Fatalf("%d manifests affected, want about %d", len(ans.VulnerableManifests), c.want)
				}
			}
		})
	}
	b.Run("get-one-report", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.Report(ctx, report.Digest(one)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fillBenchReports stores benchManifests finished reports, the report of
// each image of names under many digests, as a worker writes them.
func fillBenchReports(ctx context.Context, b *testing.B, pool *pgxpool.Pool, imgs map[string]image, names []string) {
	b.Helper()
	for i, name := range names {
		r := scanImage(b, digestOf(name), imgs[name])
		raw, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		// The same report under many digests, written as a worker's
		// finished report is (state, report).
		_, err = pool.Exec(ctx, `
INSERT INTO index_report (manifest_hash, state, scanner_state, report)
SELECT h, 'IndexFinished', 'bench', jsonb_set($1::jsonb, '{manifest_hash}', to_jsonb(h))
  FROM (SELECT 'sha256:' || encode(sha256(($2 || ':' || g)::bytea), 'hex') AS h
          FROM generate_series(1, $3::int) AS g) AS t`,
			raw, name, (benchManifests+len(names)-1-i)/len(names))
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `ANALYZE index_report`); err != nil {
		b.Fatal(err)
	}
	var n int
	pool.QueryRow(ctx, `SELECT count(*) FROM index_report`).Scan(&n)
	if n != benchManifests {
		b.Fatalf("%d reports stored, want %d", n, benchManifests)
	}
}

// notifierChunk is a notifier's chunk of 1000 vulnerabilities like match:
// one per package of the Ubuntu image img, fixed just above it, and the
// rest for names no image holds.
func notifierChunk(b *testing.B, match affected.Vulnerability, img image) []affected.Vulnerability {
	var chunk []affected.Vulnerability
	ubuntu := scanImage(b, digestOf("ubuntu"), img)
	for _, p := range ubuntu.Packages {
		v := match
		v.ID, v.Package = fmt.Sprintf("chunk-%d", len(chunk)), &affected.Package{Name: p.Name}
		v.FixedInVersion = p.Version + "+1"
		chunk = append(chunk, v)
	}
	for len(chunk) < 1000 {
		v := match
		v.ID, v.Package = fmt.Sprintf("chunk-%d", len(chunk)), &affected.Package{Name: fmt.Sprintf("absent-%d", len(chunk))}
		chunk = append(chunk, v)
	}
	return chunk
}
