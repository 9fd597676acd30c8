package api

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
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

// ifNoneMatch gives quoted tags only, and agrees with etagMatches on
// whether a tag is named.
func FuzzIfNoneMatch(f *testing.F) {
	for _, s := range []string{`"abc"`, `W/"abc", "def"`, "*", `"a",,  ,W/`, `""`, strings.Repeat(`"x",`, 100)} {
		f.Add(s, `"abc"`)
	}
	f.Fuzz(func(t *testing.T, header, etag string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("If-None-Match", header)
		tags, anyTag := ifNoneMatch(r)
		for _, tg := range tags {
			if len(tg) < 2 || tg[0] != '"' || tg[len(tg)-1] != '"' {
				t.Fatalf("tag %q is not quoted", tg)
			}
		}
		want := `"` + strings.Trim(etag, `"`) + `"`
		if strings.Trim(etag, `"`) == "" || strings.ContainsAny(etag, ", ") || strings.HasPrefix(etag, "W/") {
			return
		}
		named := anyTag || slices.Contains(tags, want)
		if named != etagMatches(header, want) {
			t.Fatalf("If-None-Match %q, ETag %s: parsed %v (any %v), etagMatches %v", header, want, tags, anyTag, etagMatches(header, want))
		}
	})
}
