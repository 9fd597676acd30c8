package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// recordReports are reports whose records the writer and Postgres must
// make alike: Clair's fixture reports, and one made of what could differ
// (escapes, non-ASCII and non-UTF-8 names, missing and nil parts, a source
// with a source, a package twice under two ids).
func recordReports(t *testing.T) map[string]*report.Report {
	t.Helper()
	out := fixtures.ClairReports(t)
	r := report.NewReport(digest("e"), report.StateIndexFinished)
	r.Distributions["1"] = &report.Distribution{ID: "1", DID: "débian", Name: "Debian \"GNU\"/Linux", VersionID: "12",
		VersionCodeName: "book\tworm", PrettyName: "Debian <12> & \u2028 \x01\x1f\x7f", CPE: `cpe:\/o`}
	r.Distributions["nil"] = nil
	r.Repositories["r1"] = &report.Repository{ID: "r1", Name: "main", URI: "https://deb/é"}
	r.Repositories["r2"] = &report.Repository{ID: "r2", Name: "ÜBER", Key: "k", CPE: "c"}
	r.Repositories["nil"] = nil
	add := func(id string, p *report.Package, envs ...*report.Environment) {
		r.Packages[id] = p
		if envs != nil {
			r.Environments[id] = envs
		}
	}
	env := func(dist string, repos ...string) *report.Environment {
		return &report.Environment{PackageDB: "var/lib/dpkg/status", IntroducedIn: digest("1"), DistributionID: dist, RepositoryIDs: repos}
	}
	add("1", &report.Package{ID: "1", Name: "ZLib1G", Version: "1:1.2\n", Kind: report.KindBinary, Arch: "amd64",
		Source: &report.Package{ID: "9", Name: "ZLIB", Version: "1", Kind: report.KindSource,
			Source: &report.Package{ID: "deep", Name: "deeper"}}}, env("1", "r1", "r2", "gone", "nil"))
	add("2", &report.Package{ID: "2", Name: "ÉCLAIR 日本 🙂", Version: "\\2", PURL: "pkg:npm/%40x/y@1", CPE: "cpe:2.3:*",
		Module: "m", NormalizedVersion: "semver:1.0.0.0.0.0.0.0.0.0"}, env("gone"), nil, env("nil", []string{}...))
	r.Environments["2"][2].RepositoryIDs = []string{}
	add("3", &report.Package{ID: "3", Name: "bad\xff\xfe utf-8", Version: "1", Source: &report.Package{Name: "src \xc3"}}, env("1"))
	add("4", &report.Package{ID: "4", Name: "", Version: "1", Source: &report.Package{Name: "a source of nothing"}}, env("1"))
	add("5", nil)
	add("6", &report.Package{ID: "6", Name: "no-environments", Version: "1"})
	r.Packages["7"] = &report.Package{ID: "7", Name: "nil-environments", Version: "1"}
	r.Environments["7"] = nil
	add("8", &report.Package{ID: "8", Name: "ZLib1G", Version: "1:1.2\n", Kind: report.KindBinary, Arch: "amd64",
		Source: &report.Package{ID: "10", Name: "ZLIB", Version: "1", Kind: report.KindSource,
			Source: &report.Package{ID: "deep", Name: "deeper"}}}, env("1", "r1", "r2", "gone", "nil"))
	add("9", &report.Package{ID: "9", Name: "same-source-name", Version: "1", Source: &report.Package{Name: "Same-Source-Name"}}, env("1"))
	out["made to differ"] = r
	return out
}

// recordsMadeAlike: the records the writer makes of a usable report
// (postgres.ReportRecords, for stevedore_put_record_list) are byte for byte
// those Postgres makes of the report's JSON (stevedore_report_records, for
// the trigger and the release before 00026): same hashes, bodies and
// lowered names. And a report written by FinishManifest and the same
// content stored whole in another report's row (as the release before
// wrote it, through the trigger) list the same records, adding none.
func recordsMadeAlike(t *testing.T, c *conf) {
	for name, r := range recordReports(t) {
		if n := sameRecords(t, c.ctx, c.pool, r); n == 0 {
			t.Errorf("%s: no records", name)
		}
	}

	// Through the store: the writer's records of a, the same content
	// written for b by the writer, then stored whole in b's row (the
	// trigger's records).
	r := recordReports(t)["made to differ"]
	a, b := manifest("a", "1"), manifest("b", "1")
	fa, fb := c.putManifest(t, "wa", a), c.putManifest(t, "wb", b)
	ra, rb := *r, *r
	ra.Hash, rb.Hash = a.Hash, b.Hash
	if err := c.st.FinishManifest(c.ctx, fa, &ra, nil, nil); err != nil {
		t.Fatal(err)
	}
	records := c.count(t, `SELECT count(*) FROM affected_record`)
	if err := c.st.FinishManifest(c.ctx, fb, &rb, nil, nil); err != nil {
		t.Fatal(err)
	}
	c.storeWhole(t, &rb)
	if n := c.count(t, `SELECT count(*) FROM affected_record`); n != records || n == 0 {
		t.Errorf("%d records after the same content went through the trigger, want %d", n, records)
	}
	if n := c.count(t, `SELECT count(DISTINCT record_ids) FROM manifest_record WHERE manifest_hash = ANY($1)`,
		[]string{string(a.Hash), string(b.Hash)}); n != 1 {
		t.Errorf("the two reports list %d different sets of records, want 1", n)
	}
}

// sameRecords fails unless the records the writer makes of r are those
// Postgres makes of its JSON; it returns their number.
func sameRecords(t *testing.T, ctx context.Context, pool *pgxpool.Pool, r *report.Report) int {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `
WITH d AS (SELECT $1::jsonb || '{}'::jsonb AS doc)
SELECT encode(x.hash, 'hex'), x.name_lower, x.source_lower, x.body::text
  FROM d, stevedore_report_records(coalesce(stevedore_report_part(d.doc, 'packages'), '{}'::jsonb),
          stevedore_report_part(d.doc, 'environments'), stevedore_report_part(d.doc, 'distributions'),
          stevedore_report_part(d.doc, 'repository')) AS x
 ORDER BY 1`, raw)
	if err != nil {
		t.Fatal(err)
	}
	want, err := scanRecordRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	hashes, names, sources, bodies := postgres.ReportRecords(r)
	rows, err = pool.Query(ctx, `
SELECT encode(x.hash, 'hex'), lower(x.name), nullif(lower(x.source), lower(x.name)), x.body
  FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[]) AS x(hash, name, source, body)
 ORDER BY 1`, hashes, names, sources, bodies)
	if err != nil {
		t.Fatal(err)
	}
	got, err := scanRecordRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(hashes) {
		t.Fatalf("%d records returned for %d sent", len(got), len(hashes))
	}
	for i := range got {
		if i >= len(want) || got[i].String() != want[i].String() {
			var w recordRow
			if i < len(want) {
				w = want[i]
			}
			t.Fatalf("record %d of %d:\n got %s\nwant %s (of %d)", i, len(got), got[i], w, len(want))
		}
		if sum := sha256Hex(got[i].body); sum != got[i].hash {
			t.Errorf("record %s: hash is not the sha256 of its body (%s)", got[i].hash, sum)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d records made by the writer, %d by Postgres", len(got), len(want))
	}
	return len(got)
}

// FuzzRecordsMadeAlike: whatever the strings of a report, the writer's
// records are those Postgres makes, on a real Postgres. Strings with a NUL
// are not tried: no Postgres text or jsonb holds one, so such a report is
// refused on either path.
func FuzzRecordsMadeAlike(f *testing.F) {
	for _, s := range [][5]string{
		{"zlib1g", "1:1.2.13", "ZLib", "Debian GNU/Linux", "main"},
		{"ÉCLAIR\u2028", "\\1\"", "\x01\x1f\x7f", "<b>&amp;</b>", "\xff\xfe"},
		{"", "1", "src", "", ""},
		{"a/b", "1", "", "dist\tname\n", "repo\\"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	ctx := context.Background()
	pool := pgtest.Pool(f)
	f.Fuzz(func(t *testing.T, name, version, source, dist, repo string) {
		for _, s := range []string{name, version, source, dist, repo} {
			if strings.ContainsRune(s, 0) {
				return
			}
		}
		r := report.NewReport(digest("f"), report.StateIndexFinished)
		r.Distributions["1"] = &report.Distribution{ID: "1", DID: dist, Name: dist, PrettyName: version}
		r.Repositories["r"] = &report.Repository{ID: "r", Name: repo, URI: source, Key: name}
		r.Packages["1"] = &report.Package{ID: "1", Name: name, Version: version, Arch: dist, PURL: repo}
		if source != "" {
			r.Packages["1"].Source = &report.Package{Name: source, Version: version}
		}
		r.Environments["1"] = []*report.Environment{{DistributionID: "1", RepositoryIDs: []string{"r", version}}}
		r.Packages["2"] = &report.Package{ID: "2", Name: source, Version: name, CPE: version}
		r.Environments["2"] = []*report.Environment{{DistributionID: name, RepositoryIDs: []string{}}}
		sameRecords(t, ctx, pool, r)
	})
}

// recordRow is one record as a query returns it.
type recordRow struct {
	hash, name string
	source     *string
	body       string
}

func (r recordRow) String() string {
	s := "<nil>"
	if r.source != nil {
		s = *r.source
	}
	return r.hash + " " + r.name + " " + s + " " + r.body
}

func scanRecordRows(rows pgx.Rows) ([]recordRow, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (r recordRow, err error) {
		return r, row.Scan(&r.hash, &r.name, &r.source, &r.body)
	})
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
