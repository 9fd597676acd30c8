package registry

import (
	"sync"
	"time"
)

// AuthTTL is how long what answering a repository's auth challenge made
// (an authenticated transport, a puller holding one, with its bearer
// token) is reused before credentials are resolved and the challenge
// answered again: by the layer fetcher, so that the layers of an image cost
// one handshake, not one each, and by the resolver, so that a lookup does
// not begin with a request to /v2/. A token that expires sooner is
// refreshed by the transport itself on a 401.
const AuthTTL = 5 * time.Minute

// maxAuthEntries bounds the repositories an AuthCache keeps; past it, the
// oldest goes.
const maxAuthEntries = 256

// AuthCache keeps, per repository, what answering its auth challenge made,
// for AuthTTL, and at most 256 repositories (the oldest goes first). It is
// safe for concurrent use; the zero value is ready.
type AuthCache[V any] struct {
	mu      sync.Mutex
	entries map[string]authEntry[V]
	now     func() time.Time // time.Now when nil (tests set it)
}

type authEntry[V any] struct {
	v    V
	made time.Time
}

// Get returns key's value if it was put less than AuthTTL ago.
func (c *AuthCache[V]) Get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || c.clock().Sub(e.made) >= AuthTTL {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put keeps v for key from now on, in place of what key had.
func (c *AuthCache[V]) Put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]authEntry[V]{}
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= maxAuthEntries {
		oldest := ""
		for k, e := range c.entries {
			if oldest == "" || e.made.Before(c.entries[oldest].made) {
				oldest = k
			}
		}
		delete(c.entries, oldest)
	}
	c.entries[key] = authEntry[V]{v: v, made: c.clock()}
}

func (c *AuthCache[V]) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// Delete forgets key's value if is says it is the one meant (not one
// another caller put since).
func (c *AuthCache[V]) Delete(key string, is func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && is(e.v) {
		delete(c.entries, key)
	}
}
