package cli

import (
	"context"
	"fmt"
	"sync"

	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
)

// replayResolver is the resolver of a scan's lookup and of its node's
// dispatcher: a reference the lookup resolved (and found a report to make
// for) is handed to the dispatcher as resolved, instead of being asked of its
// registry again milliseconds later: the manifest, the config blob and the
// token requests of a remote registry, each a round trip. Prefetch starts the
// resolution before the lookup asks for it (while Postgres connects).
type replayResolver struct {
	next intake.Resolver
	mu   sync.Mutex
	got  map[resolveKey]*resolution
}

type resolveKey struct{ ref, platform string }

// resolution is one resolution, under way until done is closed; uses is how
// many more callers it is handed to.
type resolution struct {
	done chan struct{}
	imgs []resolve.Image
	err  error
	uses int
}

func newReplayResolver(next intake.Resolver) *replayResolver {
	return &replayResolver{next: next, got: map[resolveKey]*resolution{}}
}

// Prefetch starts resolving ref and platform in the background, for the
// next two callers (the lookup, then the dispatcher).
func (r *replayResolver) Prefetch(ctx context.Context, ref, platform string) {
	k := resolveKey{ref, platform}
	res := &resolution{done: make(chan struct{}), uses: 2}
	r.mu.Lock()
	if _, ok := r.got[k]; ok {
		r.mu.Unlock()
		return
	}
	r.got[k] = res
	r.mu.Unlock()
	go func() {
		defer close(res.done)
		res.imgs, res.err = r.next.Resolve(ctx, ref, platform)
		if res.err != nil {
			r.forget(k, res)
		}
	}()
}

// Resolve returns the resolution of ref and platform kept (or under way)
// from an earlier call, once per use it was kept for; otherwise it asks next
// and keeps what it answers for one more caller. A failure is not kept.
func (r *replayResolver) Resolve(ctx context.Context, ref, platform string) ([]resolve.Image, error) {
	k := resolveKey{ref, platform}
	r.mu.Lock()
	res, ok := r.got[k]
	if ok {
		if res.uses--; res.uses <= 0 {
			delete(r.got, k)
		}
	}
	r.mu.Unlock()
	if ok {
		select {
		case <-res.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("resolve %q: %w", ref, ctx.Err())
		}
		if res.err == nil {
			return res.imgs, nil
		}
	}
	imgs, err := r.next.Resolve(ctx, ref, platform)
	if err == nil {
		done := make(chan struct{})
		close(done)
		r.mu.Lock()
		r.got[k] = &resolution{done: done, imgs: imgs, uses: 1}
		r.mu.Unlock()
	}
	return imgs, err
}

// forget drops res, a failed resolution, unless another replaced it.
func (r *replayResolver) forget(k resolveKey, res *resolution) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got[k] == res {
		delete(r.got, k)
	}
}
