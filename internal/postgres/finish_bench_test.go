package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/report"
)

// BenchmarkFinishManifest: a worker's final write of a finished report of
// n Debian packages (with its stored answers and, since migration 00023,
// its affected records), the same report again ("same": its records are
// stored already, as for a manifest on a shared base layer) or with every
// version new ("new": every record written). Compare two trees' binaries
// run alternately.
//
//	go test -run '^$' -bench FinishManifest -benchtime 50x ./internal/postgres/
func BenchmarkFinishManifest(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.Pool(b)
	st := postgres.New(pool)
	m := manifest("a", "1")
	f, err := leasedManifest(ctx, pool, st, m)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{100, 1000} {
		for _, fresh := range []bool{false, true} {
			name := fmt.Sprintf("packages-%d/same", n)
			if fresh {
				name = fmt.Sprintf("packages-%d/new", n)
			}
			i := 0
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					if fresh {
						i++
					}
					if err := finishBench(ctx, st, f, benchReport(m.Hash, n, i)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// benchReport is a finished Debian report of n packages, their versions
// ending in v.
func benchReport(d report.Digest, n, v int) *report.Report {
	r := report.NewReport(d, report.StateIndexFinished)
	r.Success, r.ScannerState = true, "bench"
	r.Distributions["1"] = &report.Distribution{ID: "1", DID: "debian", Name: "Debian GNU/Linux", VersionID: "12",
		VersionCodeName: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)"}
	for i := range n {
		id := fmt.Sprint(i + 1)
		name := fmt.Sprintf("package-%d", i)
		version := fmt.Sprintf("1.%d.%d-1", i, v)
		r.Packages[id] = &report.Package{ID: id, Name: name, Version: version, Kind: report.KindBinary, Arch: "amd64",
			PURL:   fmt.Sprintf("pkg:deb/debian/%s@%s?arch=amd64&distro=debian-12", name, version),
			Source: &report.Package{Name: fmt.Sprintf("source-%d", i/3), Version: version, Kind: report.KindSource}}
		r.Environments[id] = []*report.Environment{{PackageDB: "var/lib/dpkg/status", IntroducedIn: d, DistributionID: "1"}}
	}
	return r
}

// BenchmarkFinishManifestParallel: final writes of 130-package reports by
// 6 writers at once, each rewriting a manifest of its own with the same
// packages (their records stored already, as for manifests on one base
// layer): what contends on shared rows and index pages.
//
//	go test -run '^$' -bench FinishManifestParallel -benchtime 300x ./internal/postgres/
func BenchmarkFinishManifestParallel(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.Pool(b)
	st := postgres.New(pool)
	var next atomic.Int64
	b.SetParallelism(3) // 6 writers on the 2 cores
	b.RunParallel(func(pb *testing.PB) {
		m := manifest(fmt.Sprintf("%x", next.Add(1)), "1")
		f, err := leasedManifest(ctx, pool, st, m)
		if err != nil {
			b.Error(err)
			return
		}
		r := benchReport(m.Hash, 130, 0)
		for pb.Next() {
			if err := finishBench(ctx, st, f, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// leasedManifest takes a lease on m for the benchmark and stores m under its
// fence.
func leasedManifest(ctx context.Context, pool *pgxpool.Pool, st *postgres.Store, m *report.Manifest) (postgres.Fence, error) {
	l, err := leases.New(pool, "bench", leases.WithTTL(time.Hour)).Acquire(ctx, string(m.Hash))
	if err != nil {
		return postgres.Fence{}, err
	}
	f := postgres.Fence{Digest: m.Hash, Token: l.Fence}
	return f, st.PutManifest(ctx, f, m)
}

// BenchmarkReportRecords: making the records of a 1,000-package report in
// the writer (no Postgres), the part of FinishManifest's records that
// migration 00026 moved out of Postgres.
func BenchmarkReportRecords(b *testing.B) {
	r := benchReport(digest("a"), 1000, 0)
	for b.Loop() {
		postgres.ReportRecords(r)
	}
}
