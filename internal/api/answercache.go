package api

import (
	"container/list"
	"context"
	"slices"
	"sync"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
)

// DefaultAnswerCacheBytes bounds the bytes of stored answers the API keeps
// in memory between requests (WithAnswerCacheBytes).
const DefaultAnswerCacheBytes = 32 << 20

// answerCache keeps the stored answers of one chunk (postgres.BodyChunkSize
// at most) last served, least recently used out first, within a bound in
// bytes: their bytes as stored (gzip compressed, about a tenth of their
// JSON), with their coding. An answer's bytes never change under its ETag (the ETag names the
// report's row as encoded), so an entry is never stale: it is only served
// after the store said, in the request's one query, that the answer stored
// now has the entry's ETag. An answer replaced or removed in the store is
// then simply not served from here, whichever process changed it; its entry
// goes when it is replaced or falls out.
type answerCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // of *cachedAnswer, most recently used first
	byKey map[answerKey]*list.Element
}

type answerKey struct {
	digest report.Digest
	view   string
}

type cachedAnswer struct {
	key  answerKey
	etag string
	// encoding, identitySize and data are those of the stored answer
	// (postgres.Body): an entry is served with its own, whatever coding
	// the answer stored now under the same ETag has.
	encoding     string
	identitySize int64
	data         []byte
}

func newAnswerCache(max int64) *answerCache {
	return &answerCache{max: max, order: list.New(), byKey: make(map[answerKey]*list.Element)}
}

// etags returns the ETags of the answers of d kept in views.
func (c *answerCache) etags(d report.Digest, views []string) []string {
	if c.max <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, v := range views {
		if e, ok := c.byKey[answerKey{d, v}]; ok {
			out = append(out, e.Value.(*cachedAnswer).etag)
		}
	}
	return out
}

// get returns the answer kept for d in view under etag.
func (c *answerCache) get(d report.Digest, view, etag string) (cachedAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[answerKey{d, view}]
	if !ok || e.Value.(*cachedAnswer).etag != etag {
		return cachedAnswer{}, false
	}
	c.order.MoveToFront(e)
	return *e.Value.(*cachedAnswer), true
}

// put keeps b when it is whole in its first chunk and fits the bound; the
// bytes are kept as they are, and must not change afterwards.
func (c *answerCache) put(d report.Digest, b *postgres.Body) {
	n := int64(len(b.First))
	if b.Chunks != 1 || n != b.Size || n > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := answerKey{d, b.View}
	if e, ok := c.byKey[k]; ok {
		c.remove(e)
	}
	c.byKey[k] = c.order.PushFront(&cachedAnswer{key: k, etag: b.ETag, encoding: b.Encoding, identitySize: b.IdentitySize, data: b.First})
	c.size += n
	for c.size > c.max {
		c.remove(c.order.Back())
	}
}

// drop forgets the answers of d (the store has none now).
func (c *answerCache) drop(d report.Digest, views []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range views {
		if e, ok := c.byKey[answerKey{d, v}]; ok {
			c.remove(e)
		}
	}
}

func (c *answerCache) remove(e *list.Element) {
	a := c.order.Remove(e).(*cachedAnswer)
	delete(c.byKey, a.key)
	c.size -= int64(len(a.data))
}

// openBody is postgres.Store.OpenBody through the answer cache: the ETags
// kept for d are given to the store with the client's, and when the answer
// stored now is one kept here, its bytes come from here (the query read no
// chunk). NotModified is set only for the client's tags.
func (s *Server) openBody(ctx context.Context, d report.Digest, views, tags []string, anyTag bool) (*postgres.Body, error) {
	kept := s.cache.etags(d, views)
	if len(kept) == 0 {
		b, err := s.store.OpenBody(ctx, d, views, tags, anyTag)
		if err == nil && !b.NotModified {
			s.cache.put(d, b)
		}
		return b, err
	}
	b, err := s.store.OpenBody(ctx, d, views, append(slices.Clip(tags), kept...), anyTag)
	if err != nil {
		s.cache.drop(d, views)
		return nil, err
	}
	if !b.NotModified || anyTag || slices.Contains(tags, b.ETag) {
		if !b.NotModified {
			s.cache.put(d, b)
		}
		return b, nil
	}
	if a, ok := s.cache.get(d, b.View, b.ETag); ok {
		b.NotModified, b.First = false, a.data
		b.Encoding, b.Size, b.IdentitySize, b.Chunks = a.encoding, int64(len(a.data)), a.identitySize, 1
		return b, nil
	}
	// Replaced in the cache since: read it from the store.
	return s.store.OpenBody(ctx, d, views, tags, anyTag)
}
