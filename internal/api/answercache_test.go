package api

import (
	"bytes"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
)

func cacheBody(view, etag string, n, chunks int) *postgres.Body {
	return &postgres.Body{View: view, ETag: etag, Size: int64(n), Chunks: chunks, First: bytes.Repeat([]byte{'x'}, n)}
}

// keep reads b as the store's answer of d in views and keeps it.
func keep(c *answerCache, d report.Digest, views string, b *postgres.Body) {
	t := c.begin(d)
	c.put(d, views, b, t)
	c.end(d, t)
}

// The cache keeps answers of one chunk within its bound, least recently used
// out first, and only under their ETag.
func TestAnswerCacheBound(t *testing.T) {
	c := newAnswerCache(400)
	a, b, d := report.Digest("sha256:a"), report.Digest("sha256:b"), report.Digest("sha256:d")
	keep(c, a, "clair", cacheBody("clair", `"1"`, 100, 1))
	keep(c, b, "clair", cacheBody("clair", `"2"`, 100, 1))
	keep(c, d, "clair", cacheBody("clair", `"3"`, 101, 1)) // more than a quarter of the bound: not kept
	keep(c, d, "clair", cacheBody("clair", `"4"`, 50, 2))  // not whole in its first chunk: not kept
	if _, ok := c.get(a, "clair", `"1"`); !ok {
		t.Fatal("a: not kept")
	}
	if _, ok := c.get(a, "clair", `"other"`); ok {
		t.Fatal("a: served under another ETag")
	}
	if got, ok := c.etag(d, "clair"); ok {
		t.Fatalf("d: kept %v", got)
	}
	for i := range 3 {
		keep(c, report.Digest("sha256:"+string(rune('e'+i))), "native", cacheBody("native", `"x"`, 100, 1))
	}
	// a was used after b: b went out.
	if _, ok := c.get(b, "clair", `"2"`); ok {
		t.Fatal("b: kept beyond the bound")
	}
	if c.size > c.max || c.order.Len() != 4 {
		t.Fatalf("size %d of %d, %d entries", c.size, c.max, c.order.Len())
	}
	c.drop(a, "clair")
	if _, ok := c.get(a, "clair", `"1"`); ok || c.size != 300 {
		t.Fatalf("a dropped: still kept, or size %d", c.size)
	}
}

// Answers are served without the store only while notifications are heard;
// a notification drops its digest's answers, and a read under way during a
// notification, or a start or stop of listening, does not keep its answer.
func TestAnswerCacheTrust(t *testing.T) {
	a, b := report.Digest("sha256:a"), report.Digest("sha256:b")
	steps := []struct {
		name string
		// during runs between a read of a's answer and its put.
		during func(c *answerCache)
		// listening is whether the cache listens at the end.
		listening bool
		kept      bool
	}{
		{"not listening: kept, not trusted", func(*answerCache) {}, false, true},
		{"listening: kept, trusted", func(*answerCache) {}, true, true},
		{"notified of a", func(c *answerCache) { c.AnswerChanged(a) }, true, false},
		{"notified of another digest", func(c *answerCache) { c.AnswerChanged(b) }, true, true},
		{"notified of all", func(c *answerCache) { c.AnswerChanged("") }, true, false},
		{"connection lost", func(c *answerCache) { c.Listening(false) }, false, false},
		{"connection (re)established", func(c *answerCache) { c.Listening(true) }, true, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			c := newAnswerCache(1 << 20)
			if s.listening {
				c.Listening(true)
			}
			tk := c.begin(a)
			s.during(c)
			c.put(a, "clair", cacheBody("clair", `"1"`, 10, 1), tk)
			c.end(a, tk)
			if _, ok := c.get(a, "clair", `"1"`); ok != s.kept {
				t.Fatalf("kept %v, want %v", ok, s.kept)
			}
			if _, ok := c.lookup(a, "clair"); ok != (s.kept && s.listening) {
				t.Fatalf("served without the store: %v", ok)
			}
			if len(c.flights) != 0 {
				t.Fatalf("%d reads left under way", len(c.flights))
			}
		})
	}
	c := newAnswerCache(1 << 20)
	c.Listening(true)
	keep(c, a, "clair", cacheBody("clair", `"1"`, 10, 1))
	keep(c, b, "clair", cacheBody("clair", `"2"`, 10, 1))
	c.AnswerChanged(a)
	if _, ok := c.lookup(a, "clair"); ok {
		t.Fatal("a: served after its notification")
	}
	if _, ok := c.lookup(b, "clair"); !ok {
		t.Fatal("b: dropped by a's notification")
	}
	c.Listening(false)
	if _, ok := c.lookup(b, "clair"); ok || c.size != 0 {
		t.Fatal("b: kept after the connection was lost")
	}
}
