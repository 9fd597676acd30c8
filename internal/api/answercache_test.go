package api

import (
	"bytes"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
)

// The cache keeps answers of one chunk within its bound, least recently used
// out first, and only under their ETag.
func TestAnswerCacheBound(t *testing.T) {
	body := func(view, etag string, n, chunks int) *postgres.Body {
		return &postgres.Body{View: view, ETag: etag, Size: int64(n), Chunks: chunks, First: bytes.Repeat([]byte{'x'}, n)}
	}
	c := newAnswerCache(400)
	a, b, d := report.Digest("sha256:a"), report.Digest("sha256:b"), report.Digest("sha256:d")
	c.put(a, body("clair", `"1"`, 100, 1))
	c.put(b, body("clair", `"2"`, 100, 1))
	c.put(d, body("clair", `"3"`, 101, 1)) // more than a quarter of the bound: not kept
	c.put(d, body("clair", `"4"`, 50, 2))  // not whole in its first chunk: not kept
	if _, ok := c.get(a, "clair", `"1"`); !ok {
		t.Fatal("a: not kept")
	}
	if _, ok := c.get(a, "clair", `"other"`); ok {
		t.Fatal("a: served under another ETag")
	}
	if got := c.etags(d, []string{"clair", "native"}); len(got) != 0 {
		t.Fatalf("d: kept %v", got)
	}
	for i := range 3 {
		c.put(report.Digest("sha256:"+string(rune('e'+i))), body("native", `"x"`, 100, 1))
	}
	// a was used after b: b went out.
	if _, ok := c.get(b, "clair", `"2"`); ok {
		t.Fatal("b: kept beyond the bound")
	}
	if c.size > c.max || c.order.Len() != 4 {
		t.Fatalf("size %d of %d, %d entries", c.size, c.max, c.order.Len())
	}
	c.drop(a, []string{"clair"})
	if _, ok := c.get(a, "clair", `"1"`); ok || c.size != 300 {
		t.Fatalf("a dropped: still kept, or size %d", c.size)
	}
}
