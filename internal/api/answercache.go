package api

import (
	"container/list"
	"context"
	"slices"
	"strings"
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
// JSON), with their coding and the state of the report they encode (what
// the warm POST asks), each under the views asked for.
//
// While the server's reportwait.Hub listens on postgres.AnswerChannel (it
// is the Hub's AnswerListener), the cache is trusted: an answer kept is
// served with no query, and a notification drops the digest's answers.
// Whichever process changes a report or its answers, the triggers of
// migration 00022 send the digest when it commits. Each time the
// connection starts or stops listening, everything kept goes: what changed
// while nobody listened was not heard. A reply read from the store is kept
// only when no notification of its digest, and no such start or stop,
// came since it was asked for (a read in flight may have read what was
// replaced).
//
// While the cache is not trusted, an answer kept is served only after the
// store said, in the request's one query, that the answer stored now has
// its ETag.
type answerCache struct {
	mu      sync.Mutex
	max     int64
	size    int64
	order   *list.List // of *cachedAnswer, most recently used first
	byKey   map[answerKey]*list.Element
	viewSet map[string]struct{} // the views keys used (a handful)
	// trusted is set while notifications are heard; epoch counts the
	// times it changed.
	trusted bool
	epoch   uint64
	flights map[report.Digest]*flight
}

type answerKey struct {
	digest report.Digest
	// views are the views asked for, joined (viewsKey).
	views string
}

type cachedAnswer struct {
	key answerKey
	// body is the answer as the store returned it (NotModified unset,
	// First all its bytes): it is served with its own coding.
	body postgres.Body
}

// flight counts the reads of one digest's answer under way; stale is set
// by a notification of that digest during them.
type flight struct {
	n     int
	stale bool
}

// ticket is what a read under way needs to keep what it read.
type ticket struct {
	f     *flight
	epoch uint64
}

func newAnswerCache(max int64) *answerCache {
	return &answerCache{max: max, order: list.New(), byKey: make(map[answerKey]*list.Element),
		viewSet: make(map[string]struct{}), flights: make(map[report.Digest]*flight)}
}

func viewsKey(views []string) string {
	if len(views) == 1 {
		return views[0]
	}
	return strings.Join(views, ",")
}

// AnswerChanged drops the answers kept of d ("" all of them), and stops the
// reads of d under way from keeping theirs.
func (c *answerCache) AnswerChanged(d report.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d == "" {
		c.clearLocked()
		return
	}
	for v := range c.viewSet {
		if e, ok := c.byKey[answerKey{d, v}]; ok {
			c.remove(e)
		}
	}
	if f := c.flights[d]; f != nil {
		f.stale = true
	}
}

// Listening drops every answer kept, and trusts the cache from now on when
// up.
func (c *answerCache) Listening(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
	c.trusted = up
}

func (c *answerCache) clearLocked() {
	c.order.Init()
	clear(c.byKey)
	c.size = 0
	c.epoch++
	for _, f := range c.flights {
		f.stale = true
	}
}

// lookup returns the answer kept of d in views when the cache is trusted.
func (c *answerCache) lookup(d report.Digest, views string) (postgres.Body, bool) {
	if c.max <= 0 {
		return postgres.Body{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[answerKey{d, views}]
	if !c.trusted || !ok {
		return postgres.Body{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cachedAnswer).body, true
}

// begin is called before reading the answer of d from the store; end after.
func (c *answerCache) begin(d report.Digest) ticket {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.flights[d]
	if f == nil {
		f = new(flight)
		c.flights[d] = f
	}
	f.n++
	return ticket{f: f, epoch: c.epoch}
}

func (c *answerCache) end(d report.Digest, t ticket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.f.n--
	if t.f.n == 0 && c.flights[d] == t.f {
		delete(c.flights, d)
	}
}

// etag returns the ETag of the answer of d kept in views, if any.
func (c *answerCache) etag(d report.Digest, views string) (string, bool) {
	if c.max <= 0 {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[answerKey{d, views}]; ok {
		return e.Value.(*cachedAnswer).body.ETag, true
	}
	return "", false
}

// get returns the answer kept of d in views under etag.
func (c *answerCache) get(d report.Digest, views, etag string) (postgres.Body, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[answerKey{d, views}]
	if !ok || e.Value.(*cachedAnswer).body.ETag != etag {
		return postgres.Body{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cachedAnswer).body, true
}

// put keeps b, read from the store under t, when it is whole in its first
// chunk and fits the bound, and nothing said since t was taken that it may
// be stale; the bytes are kept as they are, and must not change afterwards.
func (c *answerCache) put(d report.Digest, views string, b *postgres.Body, t ticket) {
	n := int64(len(b.First))
	if b.NotModified || b.Chunks != 1 || n != b.Size || n > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.f.stale || t.epoch != c.epoch {
		return
	}
	k := answerKey{d, views}
	if e, ok := c.byKey[k]; ok {
		c.remove(e)
	}
	c.viewSet[views] = struct{}{}
	c.byKey[k] = c.order.PushFront(&cachedAnswer{key: k, body: *b})
	c.size += n
	for c.size > c.max {
		c.remove(c.order.Back())
	}
}

// drop forgets the answer of d in views (the store has none now).
func (c *answerCache) drop(d report.Digest, views string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[answerKey{d, views}]; ok {
		c.remove(e)
	}
}

func (c *answerCache) remove(e *list.Element) {
	a := c.order.Remove(e).(*cachedAnswer)
	delete(c.byKey, a.key)
	c.size -= int64(len(a.body.First))
}

// openBody is postgres.Store.OpenBody through the answer cache. While the
// cache is trusted, an answer kept is served with no query. Otherwise the
// ETag kept for d is given to the store with the client's, and when the
// answer stored now is the one kept here, its bytes come from here (the
// query read no chunk). NotModified is set only for the client's tags.
func (s *Server) openBody(ctx context.Context, d report.Digest, views, tags []string, anyTag bool) (*postgres.Body, error) {
	if s.hub != nil {
		s.hub.Keep()
	}
	vk := viewsKey(views)
	if b, ok := s.cache.lookup(d, vk); ok {
		if anyTag || slices.Contains(tags, b.ETag) {
			b.NotModified, b.First = true, nil
		}
		return &b, nil
	}
	t := s.cache.begin(d)
	defer s.cache.end(d, t)
	kept, ok := s.cache.etag(d, vk)
	if !ok {
		b, err := s.store.OpenBody(ctx, d, views, tags, anyTag)
		if err == nil {
			s.cache.put(d, vk, b, t)
		}
		return b, err
	}
	b, err := s.store.OpenBody(ctx, d, views, append(slices.Clip(tags), kept), anyTag)
	if err != nil {
		s.cache.drop(d, vk)
		return nil, err
	}
	if !b.NotModified || anyTag || slices.Contains(tags, b.ETag) {
		s.cache.put(d, vk, b, t)
		return b, nil
	}
	if a, ok := s.cache.get(d, vk, b.ETag); ok {
		a.ID, a.State, a.ScannerState, a.NextRetry = b.ID, b.State, b.ScannerState, b.NextRetry
		return &a, nil
	}
	// Replaced in the cache since: read it from the store.
	return s.store.OpenBody(ctx, d, views, tags, anyTag)
}
