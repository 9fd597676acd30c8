// Package measure holds what the bench commands measure with: latency
// percentiles, and a closed-loop load (clients that each send one request
// after the other for a while).
package measure

import (
	"errors"
	"sync"
	"time"

	"github.com/stevedore-dev/stevedore/internal/testing/cputime"
)

// Percentile returns the latency at fraction p (0.5, 0.99) of sorted, which
// must be sorted; 0 when it is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// Result is what a load measured.
type Result struct {
	// N is the number of requests that completed.
	N int
	// Elapsed is the wall time of the load.
	Elapsed time.Duration
	// Latencies are the completed requests' latencies, unsorted.
	Latencies []time.Duration
	// Bytes is the sum of what the requests reported reading.
	Bytes int64
	// CPU is this process's CPU time (user and system: the clients, and the
	// server when it runs in this process) while the load ran.
	CPU time.Duration
}

// Add adds o's figures to r's.
func (r *Result) Add(o Result) {
	r.N += o.N
	r.Elapsed += o.Elapsed
	r.Latencies = append(r.Latencies, o.Latencies...)
	r.Bytes += o.Bytes
	r.CPU += o.CPU
}

// Rate is the requests completed per second of Elapsed.
func (r *Result) Rate() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// Load runs clients goroutines for d. Client c calls the request function
// that newClient(c) returns over and over until d has passed; it returns
// the bytes it read. A request's error stops its client, and that client's
// figures are dropped; the errors of all clients are joined and returned
// with what the others measured.
func Load(clients int, d time.Duration, newClient func(c int) func() (int64, error)) (Result, error) {
	var (
		mu  sync.Mutex
		out Result
		bad error
		wg  sync.WaitGroup
	)
	start, cpu0 := time.Now(), cputime.Process()
	deadline := start.Add(d)
	for c := range clients {
		request := newClient(c)
		wg.Go(func() {
			var lat []time.Duration
			var bytes int64
			for time.Now().Before(deadline) {
				t := time.Now()
				n, err := request()
				if err != nil {
					mu.Lock()
					bad = errors.Join(bad, err)
					mu.Unlock()
					return
				}
				lat = append(lat, time.Since(t))
				bytes += n
			}
			mu.Lock()
			out.Latencies = append(out.Latencies, lat...)
			out.N += len(lat)
			out.Bytes += bytes
			mu.Unlock()
		})
	}
	wg.Wait()
	out.Elapsed, out.CPU = time.Since(start), cputime.Process()-cpu0
	return out, bad
}
