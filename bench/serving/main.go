// Command serving measures the API's serving throughput on a finished
// report (issue 13, goal 4): requests per second and latency percentiles of
// GET index_report, a conditional GET of it (304), a warm POST index_report
// (the report is current: 201 at once), GET of the native report, GET
// index_report asking for no gzip (Accept-Encoding: identity: the stored
// answer decompressed while it is sent), GET index_report asking for gzip
// explicitly (Go's client then leaves the body compressed: the client's
// decompression, which a remote client does on its own machine, is not in
// the CPU column), and GET index_state, each from
// -clients concurrent clients, in one run, with the ratios to index_state's
// throughput; and GET index_report and the warm POST again on a second API
// keeping no answers in memory (api.WithAnswerCacheBytes(0)), for the
// difference that memory makes.
//
// The clients are Go's, as Clair's are: they ask for gzip and decompress
// the answer (the "bytes" column is what the client read). The "CPU µs/req"
// column is this process's CPU time (API and clients, not Postgres) per
// request. The API runs in this process (api.New with a dispatcher and the
// real store, on a fresh schema of DATABASE_URL, the pool's default size) on
// a loopback listener; the report (-packages packages, Debian-like) is
// written through the store as a worker writes it. The endpoints are
// measured in -rounds interleaved rounds of -duration each.
//
//	go run ./bench/serving
//	go run ./bench/serving -clients 20 -packages 182 -duration 3s -rounds 3
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"

	"github.com/stevedore-dev/stevedore/bench/internal/benchserve"
	"github.com/stevedore-dev/stevedore/bench/internal/measure"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stevedore-dev/stevedore/bench/internal/benchdb"
	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/report"
)

const scannerState = "bench-scanner-state"

func main() {
	var (
		clients  = flag.Int("clients", 20, "concurrent clients")
		packages = flag.Int("packages", 182, "packages of the report")
		duration = flag.Duration("duration", 3*time.Second, "time per endpoint per round")
		rounds   = flag.Int("rounds", 3, "interleaved rounds")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile of the measured rounds (server and clients) to this file")
		dbURL    = benchdb.URLFlag("a fresh schema is used and dropped")
	)
	flag.Parse()
	benchdb.ExitOn("serving", run(*clients, *packages, *duration, *rounds, *dbURL, *cpuprof))
}

type endpoint struct {
	name string
	// nocache: served by the API without answers kept in memory.
	nocache bool
	method  string
	path    string
	header  http.Header
	body    []byte
	status  int
}

func run(clients, packages int, duration time.Duration, rounds int, dbURL, cpuprof string) error {
	ctx := context.Background()
	pool, st, closeDB, err := benchdb.Open(ctx, dbURL, "servingbench")
	if err != nil {
		return err
	}
	defer closeDB()
	d, m, err := storeReport(ctx, pool, st, packages)
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	disp := intake.New(st, nil, nil, scannerState, log)
	base, closeAPI, err := benchserve.Serve(api.New(disp, st, log, nil))
	if err != nil {
		return err
	}
	defer closeAPI()
	base2, closeAPI2, err := benchserve.Serve(api.New(disp, st, log, nil, api.WithAnswerCacheBytes(0)))
	if err != nil {
		return err
	}
	defer closeAPI2()
	baseOf := func(ep endpoint) string {
		if ep.nocache {
			return base2
		}
		return base
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2}}

	mbody, _ := json.Marshal(m)
	eps := endpoints(d, mbody)
	first, err := do(client, base, eps[1])
	if err != nil {
		return err
	}
	eps[2].header = http.Header{"If-None-Match": {first.Header.Get("ETag")}}
	for _, ep := range eps {
		if _, err := do(client, baseOf(ep), ep); err != nil {
			return err
		}
	}
	if cpuprof != "" {
		f, err := os.Create(cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	results, err := measureRounds(client, eps, baseOf, clients, duration, rounds)
	if err != nil {
		return err
	}
	printResults(eps, results, packages, clients, rounds, duration)
	return nil
}

// endpoints are the requests measured, on the report d whose manifest is
// mbody. The If-None-Match of the third is set once its ETag is known.
func endpoints(d report.Digest, mbody []byte) []endpoint {
	return []endpoint{
		{name: "GET index_state", method: "GET", path: "/indexer/api/v1/index_state", status: 200},
		{name: "GET index_report", method: "GET", path: "/indexer/api/v1/index_report/" + string(d), status: 200},
		{name: "GET index_report, If-None-Match (304)", method: "GET", path: "/indexer/api/v1/index_report/" + string(d), status: 304},
		{name: "POST index_report, current (201)", method: "POST", path: "/indexer/api/v1/index_report", body: mbody,
			header: http.Header{"Content-Type": {"application/json"}}, status: 201},
		{name: "GET /api/v1/reports (native)", method: "GET", path: "/api/v1/reports/" + string(d), status: 200},
		{name: "GET index_report, identity", method: "GET", path: "/indexer/api/v1/index_report/" + string(d), status: 200,
			header: http.Header{"Accept-Encoding": {"identity"}}},
		{name: "GET index_report, gzip kept as sent", method: "GET", path: "/indexer/api/v1/index_report/" + string(d), status: 200,
			header: http.Header{"Accept-Encoding": {"gzip"}}},
		{name: "GET index_report, none kept in memory", nocache: true, method: "GET", path: "/indexer/api/v1/index_report/" + string(d), status: 200},
		{name: "POST index_report (201), none kept", nocache: true, method: "POST", path: "/indexer/api/v1/index_report", body: mbody,
			header: http.Header{"Content-Type": {"application/json"}}, status: 201},
	}
}

// measureRounds loads each endpoint in turn for duration, rounds times, and
// sums each endpoint's results.
func measureRounds(client *http.Client, eps []endpoint, baseOf func(endpoint) string, clients int, duration time.Duration, rounds int) ([]measure.Result, error) {
	results := make([]measure.Result, len(eps))
	for range rounds {
		for i, ep := range eps {
			r, err := load(client, baseOf(ep), ep, clients, duration)
			if err != nil {
				return nil, err
			}
			results[i].Add(r)
		}
	}
	return results, nil
}

// storeReport stores a finished report of a Debian image of packages
// packages, as a worker does, and returns its digest and manifest.
func storeReport(ctx context.Context, pool *pgxpool.Pool, st *postgres.Store, packages int) (report.Digest, *report.Manifest, error) {
	d := report.Digest("sha256:" + hex.EncodeToString(randBytes(32)))
	layer := report.Digest("sha256:" + hex.EncodeToString(randBytes(32)))
	rep := debianReport(d, layer, packages)
	l, err := leases.New(pool, "bench", leases.WithTTL(time.Minute)).Acquire(ctx, string(d))
	if err != nil {
		return "", nil, err
	}
	f := postgres.Fence{Digest: d, Token: l.Fence}
	m := &report.Manifest{Hash: d, Layers: []*report.Layer{{Hash: layer, URI: "https://registry.example.com/v2/app/blobs/" + string(layer), Headers: map[string][]string{}}}}
	if err := st.PutManifest(ctx, f, m); err != nil {
		return "", nil, err
	}
	if err := st.FinishManifest(ctx, f, rep, nil, nil); err != nil {
		return "", nil, err
	}
	l.Release(ctx)
	return d, m, nil
}

// printResults prints the rate and latencies of each endpoint, and its rate
// as a ratio of index_state's.
func printResults(eps []endpoint, results []measure.Result, packages, clients, rounds int, duration time.Duration) {
	fmt.Printf("report: %d packages; %d clients, %d rounds of %s per endpoint\n", packages, clients, rounds, duration)
	fmt.Printf("%-40s %10s %9s %9s %9s %12s %11s\n", "endpoint", "req/s", "p50 ms", "p99 ms", "bytes", "÷ index_state", "CPU µs/req")
	stateRate := results[0].Rate()
	for i, ep := range eps {
		r := results[i]
		rate := r.Rate()
		slices.Sort(r.Latencies)
		fmt.Printf("%-40s %10.0f %9.2f %9.2f %9d %12.3f %11.0f\n", ep.name, rate, ms(measure.Percentile(r.Latencies, 0.50)), ms(measure.Percentile(r.Latencies, 0.99)), r.Bytes/int64(max(r.N, 1)), rate/stateRate,
			float64(r.CPU.Microseconds())/float64(max(r.N, 1)))
	}
}

func do(client *http.Client, base string, ep endpoint) (*http.Response, error) {
	req, err := http.NewRequest(ep.method, base+ep.path, bytes.NewReader(ep.body))
	if err != nil {
		return nil, err
	}
	for k, v := range ep.header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != ep.status {
		return nil, fmt.Errorf("%s: HTTP %d, want %d", ep.name, resp.StatusCode, ep.status)
	}
	resp.ContentLength = n
	return resp, nil
}

// load runs ep from clients goroutines for d.
func load(client *http.Client, base string, ep endpoint, clients int, d time.Duration) (measure.Result, error) {
	return measure.Load(clients, d, func(int) func() (int64, error) {
		return func() (int64, error) {
			resp, err := do(client, base, ep)
			if err != nil {
				return 0, err
			}
			return resp.ContentLength, nil
		}
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// debianReport is a finished report of n Debian-like packages, each with
// its source package and environment.
func debianReport(d, layer report.Digest, n int) *report.Report {
	r := report.NewReport(d, report.StateIndexFinished)
	r.Success = true
	r.ScannerState = scannerState
	r.Distributions["1"] = &report.Distribution{ID: "1", DID: "debian", Name: "Debian GNU/Linux", Version: "12 (bookworm)",
		VersionCodeName: "bookworm", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", CPE: "cpe:2.3:o:debian:debian_linux:12:*:*:*:*:*:*:*"}
	for i := range n {
		id := strconv.Itoa(i + 1)
		name := fmt.Sprintf("libexample%d-%d", i%37, i)
		v := fmt.Sprintf("%d.%d.%d-%d+deb12u%d", 1+i%5, i%13, i%7, 1+i%3, i%4)
		r.Packages[id] = &report.Package{ID: id, Name: name, Version: v, Kind: report.KindBinary, Arch: "amd64",
			Source: &report.Package{Name: fmt.Sprintf("example%d", i%37), Version: v, Kind: report.KindSource},
			PURL:   fmt.Sprintf("pkg:deb/debian/%s@%s?arch=amd64&distro=debian-12", name, url.QueryEscape(v))}
		r.Environments[id] = []*report.Environment{{PackageDB: "var/lib/dpkg/status", IntroducedIn: layer, DistributionID: "1"}}
	}
	return r
}
