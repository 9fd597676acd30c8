package cli

import (
	"context"
	"sync"

	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
)

// replayResolver is the resolver of a scan's lookup and of its node's
// dispatcher: a reference the lookup resolved (and found a report to make
// for) is handed to the dispatcher as resolved, once, instead of being asked
// of its registry again milliseconds later: the manifest, the config blob and
// the token requests of a remote registry, each a round trip.
type replayResolver struct {
	next intake.Resolver
	mu   sync.Mutex
	got  map[resolveKey][]resolve.Image
}

type resolveKey struct{ ref, platform string }

func newReplayResolver(next intake.Resolver) *replayResolver {
	return &replayResolver{next: next, got: map[resolveKey][]resolve.Image{}}
}

// Resolve returns the resolution of ref and platform kept from an earlier
// call, and forgets it; otherwise it asks next and keeps what it answers.
func (r *replayResolver) Resolve(ctx context.Context, ref, platform string) ([]resolve.Image, error) {
	k := resolveKey{ref, platform}
	r.mu.Lock()
	imgs, ok := r.got[k]
	delete(r.got, k)
	r.mu.Unlock()
	if ok {
		return imgs, nil
	}
	imgs, err := r.next.Resolve(ctx, ref, platform)
	if err == nil {
		r.mu.Lock()
		r.got[k] = imgs
		r.mu.Unlock()
	}
	return imgs, err
}
