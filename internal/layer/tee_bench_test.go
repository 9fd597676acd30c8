package layer

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/layer/blobcache"
	"github.com/stevedore-dev/stevedore/scanner"
)

// BenchmarkReadThroughCache is Read of a zstd layer of real files (as
// BenchmarkReadZstdConcurrency's) from a plain reader ("direct": Read hashes
// the blob on a goroutine of its own) and through the blob cache's Tee
// ("tee"), as a worker reads a layer it fetches from a registry: the tee
// writes the blob to the cache and hashes it. The blob is removed from the
// cache after each read. It reports the wall time of the read (ns/op: to
// Read's return; waiting for the cache's commit of the blob, which runs on a
// goroutine of its own since the read ended, and its removal are not
// timed; commit-wait-ns/op is how long the blob was still being synced and
// renamed after Read returned) and the CPU time of the process (cpu-ns/op,
// all of it).
func BenchmarkReadThroughCache(b *testing.B) {
	l, err := realZstdLayer()
	if err != nil {
		b.Fatal(err)
	}
	want := sha256Digest(l.blob)
	cache, err := blobcache.Open(blobcache.Options{Dir: b.TempDir(), MaxBytes: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	for _, mode := range []string{"direct", "tee"} {
		b.Run(mode, func(b *testing.B) {
			ss := []scanner.Scanner{exactly("os", "etc/os-release")}
			b.SetBytes(int64(l.tarSize))
			cpu0 := cpuTime()
			var commitWait time.Duration
			for b.Loop() {
				// A plain io.Reader, as a network stream is.
				var r io.ReadCloser = io.NopCloser(struct{ io.Reader }{bytes.NewReader(l.blob)})
				if mode == "tee" {
					r = cache.Tee(want, int64(len(l.blob)), r)
				}
				c, err := Read(context.Background(), r, want, ss, Options{})
				r.Close()
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
				b.StopTimer()
				t0 := time.Now()
				if mode == "tee" && !cache.Contains(want) {
					b.Fatal("the blob was not cached")
				}
				commitWait += time.Since(t0)
				cache.Remove(want)
				b.StartTimer()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(commitWait)/float64(b.N), "commit-wait-ns/op")
		})
	}
}
