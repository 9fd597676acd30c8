package httpapi

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// The answer limiter never lets more than its bound be held at once, gives
// an answer bigger than the bound the whole bound, and a waiter gives up
// with its context.
func TestAnswerLimiterBoundsBytes(t *testing.T) {
	const bound = 1 << 20
	for _, tc := range []struct {
		name    string
		weights []int64
	}{
		{"small answers", []int64{1, 100, 4096, 65536}},
		{"chunks", []int64{256 << 10}},
		{"mixed, some over the bound", []int64{10, 256 << 10, 3 << 20, 700 << 10, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newAnswerLimiter(bound)
			var held, peak atomic.Int64
			var wg sync.WaitGroup
			for i := range 64 {
				n := tc.weights[i%len(tc.weights)]
				wg.Go(func() {
					release, err := l.acquire(context.Background(), n)
					if err != nil {
						t.Error(err)
						return
					}
					w := min(n, bound)
					now := held.Add(w)
					for {
						p := peak.Load()
						if now <= p || peak.CompareAndSwap(p, now) {
							break
						}
					}
					held.Add(-w)
					release()
				})
			}
			wg.Wait()
			if p := peak.Load(); p > bound || p == 0 {
				t.Fatalf("peak %d bytes held, bound %d", p, bound)
			}
		})
	}

	l := newAnswerLimiter(bound)
	release, err := l.acquire(context.Background(), bound)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.acquire(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with the bound held and a cancelled context: %v, want context.Canceled", err)
	}
	release()
	if r, err := l.acquire(context.Background(), 1); err != nil {
		t.Fatalf("acquire after release: %v", err)
	} else {
		r()
	}
}
