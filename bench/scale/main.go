// Command scale measures Stevedore's store at registry scale (issue 13,
// goal 5): a fleet of manifests over shared layers, indexed through the
// real indexer and store (internal/indexer, internal/postgres: every
// unique layer scanned once, every manifest coalesced and its report
// stored with its encoded answers), on a fresh schema of DATABASE_URL.
//
// The fleet (bench/internal/scalefleet, which bench/claircore shares): real
// package databases of the fixtures, varied per base layer, and npm,
// Python and Ruby application layers; a manifest is a base and one or two
// application layers, every manifest distinct.
//
// The fleet grows through each of -sizes (manifests); at each size the
// command prints: Postgres bytes (every table of the schema, with indexes
// and TOAST) per manifest and per unique layer used, the largest tables,
// GET index_report and warm POST index_report p50/p99 (the API in this
// process on loopback, -clients concurrent clients, random manifests of
// the fleet), and the re-index sweep's store side in manifests per second
// (every report asked for re-index, then ReportsToReindex and
// MarkReindexQueued in batches, as the sweep does, without its rate
// limit), and at the end the growth from the first size to each other.
//
//	go run ./bench/scale
//	go run ./bench/scale -sizes 1000,10000,100000 -layers 2000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/bench/internal/benchserve"
	"github.com/stevedore-dev/stevedore/bench/internal/measure"

	"github.com/stevedore-dev/stevedore/bench/internal/benchdb"
	"github.com/stevedore-dev/stevedore/bench/internal/scalefleet"
	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner/all"
)

func main() {
	var (
		sizes    = flag.String("sizes", "1000,10000", "fleet sizes (manifests), growing")
		layers   = flag.Int("layers", 2000, "unique layers (a tenth of them base layers)")
		clients  = flag.Int("clients", 20, "concurrent clients for the latency figures")
		duration = flag.Duration("duration", 3*time.Second, "time per endpoint per size")
		parallel = flag.Int("parallel", 6, "manifests indexed at once (their own pool, asynchronous commit: the build is not what is measured)")
		fixtures = flag.String("fixtures", "testdata/fixtures", "the fixtures directory")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		dbURL    = benchdb.URLFlag("a fresh schema is used and dropped")
	)
	flag.Parse()
	ns, err := scalefleet.ParseSizes(*sizes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(2)
	}
	stop := func() {}
	if *cpuprof != "" {
		stop, err = startProfile(*cpuprof)
		benchdb.ExitOn("scale", err)
	}
	err = run(context.Background(), ns, *layers, *clients, *parallel, *duration, *fixtures, *dbURL)
	stop()
	benchdb.ExitOn("scale", err)
}

// startProfile starts a CPU profile written to path; stop ends it.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

type figures struct {
	manifests, layersUsed int
	bytes                 int64
	tables                string // the largest, when bytes was measured
	indexRate             float64
	get, post             latency
	sweepRate             float64
}

type latency struct {
	p50, p99 time.Duration
	rate     float64
}

func run(ctx context.Context, sizes []int, nLayers, clients, parallel int, d time.Duration, fixtures, dbURL string) error {
	start := time.Now()
	fl, err := scalefleet.New(fixtures, nLayers)
	if err != nil {
		return err
	}
	fmt.Printf("%d unique layers (%d base, %d application), %.1f MB of blobs, built in %s\n", len(fl.Blobs), len(fl.Bases), len(fl.Apps), float64(fl.BlobBytes())/1e6, time.Since(start).Round(time.Millisecond))

	_, st, closeDB, err := benchdb.Open(ctx, dbURL, "scalebench")
	if err != nil {
		return err
	}
	defer closeDB()
	ixPool, err := buildPool(ctx, st, parallel)
	if err != nil {
		return err
	}
	defer ixPool.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ix, err := indexer.New(ctx, indexer.Config{Store: postgres.New(ixPool), Fetcher: fl.Blobs, Scanners: all.Default(), Logger: log})
	if err != nil {
		return err
	}
	lm := leases.New(ixPool, "scalebench", leases.WithTTL(time.Minute))
	disp := intake.New(st, nil, nil, ix.State(), log)
	base, closeAPI, err := benchserve.Serve(api.New(disp, st, log, nil))
	if err != nil {
		return err
	}
	defer closeAPI()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2}}

	used := map[report.Digest]bool{}
	var fleet []*report.Manifest
	var rows []figures
	for _, n := range sizes {
		ms := fl.Manifests(n - len(fleet))
		t := time.Now()
		if err := indexAll(ctx, ix, lm, ms, parallel); err != nil {
			return err
		}
		rate := float64(len(ms)) / time.Since(t).Seconds()
		fleet = append(fleet, ms...)
		for _, m := range ms {
			for _, l := range m.Layers {
				used[l.Hash] = true
			}
		}
		f := figures{manifests: len(fleet), layersUsed: len(used), indexRate: rate}
		if f.bytes, err = schemaBytes(ctx, st, true); err != nil {
			return err
		}
		if f.tables, err = topTables(ctx, st); err != nil {
			return err
		}
		if f.get, err = load(client, base, fleet, clients, d, false); err != nil {
			return err
		}
		if f.post, err = load(client, base, fleet, clients, d, true); err != nil {
			return err
		}
		if f.sweepRate, err = sweep(ctx, st, ix.State()); err != nil {
			return err
		}
		rows = append(rows, f)
		fmt.Printf("\n%d manifests (%d new at %.0f/s, %s), %d unique layers used\n", f.manifests, len(ms), rate, time.Since(t).Round(time.Second), f.layersUsed)
		printSize(f)
	}
	printGrowth(rows)
	return nil
}

// printSize prints the figures of one fleet size.
func printSize(f figures) {
	fmt.Printf("  Postgres: %.1f MB; %.1f KB per manifest, %.1f KB per unique layer\n", float64(f.bytes)/1e6, float64(f.bytes)/1e3/float64(f.manifests), float64(f.bytes)/1e3/float64(f.layersUsed))
	fmt.Printf("  largest tables: %s\n", f.tables)
	fmt.Printf("  GET index_report: %.0f req/s, p50 %.2f ms, p99 %.2f ms\n", f.get.rate, ms2(f.get.p50), ms2(f.get.p99))
	fmt.Printf("  warm POST index_report: %.0f req/s, p50 %.2f ms, p99 %.2f ms\n", f.post.rate, ms2(f.post.p50), ms2(f.post.p99))
	fmt.Printf("  re-index sweep (store side): %.0f manifests/s\n", f.sweepRate)
}

// printGrowth prints each size's figures as ratios to the first size's.
func printGrowth(rows []figures) {
	b := rows[0]
	fmt.Printf("\ngrowth from %d manifests (ratio of each figure to its value there):\n", b.manifests)
	fmt.Printf("%10s %12s %14s %14s %10s %10s %10s %10s %12s\n", "manifests", "DB bytes", "bytes/manif.", "bytes/layer", "GET p50", "GET p99", "POST p50", "POST p99", "sweep m/s")
	for _, f := range rows {
		fmt.Printf("%10d %12.2f %14.2f %14.2f %10.2f %10.2f %10.2f %10.2f %12.2f\n", f.manifests,
			float64(f.bytes)/float64(b.bytes),
			(float64(f.bytes)/float64(f.manifests))/(float64(b.bytes)/float64(b.manifests)),
			(float64(f.bytes)/float64(f.layersUsed))/(float64(b.bytes)/float64(b.layersUsed)),
			ratio(f.get.p50, b.get.p50), ratio(f.get.p99, b.get.p99), ratio(f.post.p50, b.post.p50), ratio(f.post.p99, b.post.p99),
			f.sweepRate/b.sweepRate)
	}
}

// buildPool connects the pool the fleet is indexed through: to the schema of
// st, parallel+2 connections, synchronous_commit off (a commit does not wait
// for its WAL flush: the same rows and bytes, sooner; the API serves from
// st's pool, with the defaults).
func buildPool(ctx context.Context, st *postgres.Store, parallel int) (*pgxpool.Pool, error) {
	cfg := st.Pool().Config().Copy()
	cfg.MaxConns = int32(parallel + 2)
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("indexing pool: %w", err)
	}
	return pool, nil
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func ms2(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// indexAll indexes ms through the indexer, parallel at a time, each under
// a lease as a worker holds one.
func indexAll(ctx context.Context, ix *indexer.Indexer, lm *leases.Manager, ms []*report.Manifest, parallel int) error {
	return scalefleet.Each(ms, parallel, func(m *report.Manifest) error { return indexOne(ctx, ix, lm, m) })
}

func indexOne(ctx context.Context, ix *indexer.Indexer, lm *leases.Manager, m *report.Manifest) error {
	l, err := lm.Acquire(ctx, string(m.Hash))
	if err != nil {
		return fmt.Errorf("lease %s: %w", m.Hash, err)
	}
	defer l.Release(context.WithoutCancel(ctx))
	job, err := json.Marshal(map[string]any{"manifest": m})
	if err != nil {
		return err
	}
	rep, err := ix.Index(l.Context(), postgres.Fence{Digest: m.Hash, Token: l.Fence}, m, indexer.Run{Attempt: 1, Job: job})
	if err != nil {
		return fmt.Errorf("index %s: %w", m.Hash, err)
	}
	if rep.State != report.StateIndexFinished {
		return fmt.Errorf("index %s: state %s", m.Hash, rep.State)
	}
	return nil
}

// schemaBytes is the size of every table of the schema, indexes and TOAST
// included, after a VACUUM when vacuum is set (dead rows of the states a
// report went through do not count).
func schemaBytes(ctx context.Context, st *postgres.Store, vacuum bool) (int64, error) {
	if vacuum {
		if _, err := st.Pool().Exec(ctx, "VACUUM"); err != nil {
			return 0, fmt.Errorf("vacuum: %w", err)
		}
	}
	var n int64
	err := st.Pool().QueryRow(ctx, `
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE s.nspname = current_schema() AND c.relkind = 'r'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("schema size: %w", err)
	}
	return n, nil
}

// topTables lists the largest tables of the schema, with their rows.
func topTables(ctx context.Context, st *postgres.Store) (string, error) {
	rows, err := st.Pool().Query(ctx, `
SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE s.nspname = current_schema() AND c.relkind = 'r'
 ORDER BY 2 DESC LIMIT 8`)
	if err != nil {
		return "", fmt.Errorf("table sizes: %w", err)
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var name string
		var size, tuples int64
		if err := rows.Scan(&name, &size, &tuples); err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s %.1f MB (%d rows)", name, float64(size)/1e6, tuples))
	}
	return strings.Join(parts, ", "), rows.Err()
}

// load asks for random manifests of fleet from clients goroutines for d:
// GET index_report, or POST index_report (warm: 201 at once).
func load(client *http.Client, base string, fleet []*report.Manifest, clients int, d time.Duration, post bool) (latency, error) {
	bodies := make([][]byte, len(fleet))
	if post {
		for i, m := range fleet {
			bodies[i], _ = json.Marshal(m)
		}
	}
	res, err := measure.Load(clients, d, func(c int) func() (int64, error) {
		r := mrand.New(mrand.NewPCG(uint64(c), 7))
		return func() (int64, error) {
			i := r.IntN(len(fleet))
			return 0, do(client, base, fleet[i], bodies[i], post)
		}
	})
	if err != nil {
		return latency{}, err
	}
	slices.Sort(res.Latencies)
	return latency{p50: measure.Percentile(res.Latencies, 0.5), p99: measure.Percentile(res.Latencies, 0.99), rate: res.Rate()}, nil
}

func do(client *http.Client, base string, m *report.Manifest, body []byte, post bool) error {
	var (
		resp *http.Response
		err  error
		want = http.StatusOK
	)
	if post {
		want = http.StatusCreated
		resp, err = client.Post(base+"/indexer/api/v1/index_report", "application/json", bytes.NewReader(body))
	} else {
		resp, err = client.Get(base + "/indexer/api/v1/index_report/" + string(m.Hash))
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s: HTTP %d, want %d", m.Hash, resp.StatusCode, want)
	}
	return nil
}

// sweep asks for every report to be indexed again, then finds and marks
// them in batches of 1000 as the re-index sweep does (without publishing
// the jobs, nor its rate limit), and returns manifests per second.
func sweep(ctx context.Context, st *postgres.Store, state string) (float64, error) {
	start := time.Now()
	if _, err := st.RequestReindex(ctx, nil, true, false, state); err != nil {
		return 0, err
	}
	n := 0
	var after *postgres.Reindex
	for {
		rs, err := st.ReportsToReindex(ctx, state, time.Hour, after, 1000)
		if err != nil {
			return 0, err
		}
		if len(rs) == 0 {
			break
		}
		ds := make([]report.Digest, len(rs))
		for i, r := range rs {
			ds[i] = r.Digest
		}
		if err := st.MarkReindexQueued(ctx, ds); err != nil {
			return 0, err
		}
		n += len(rs)
		after = &rs[len(rs)-1]
	}
	// The reports stay marked as queued: the next size asks for them all
	// again (no second UPDATE of every row, whose dead versions would
	// count in the next size's bytes).
	return float64(n) / time.Since(start).Seconds(), nil
}
