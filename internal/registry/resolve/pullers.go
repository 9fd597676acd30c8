package resolve

import (
	"context"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PullerTTL is how long a repository's authenticated transport (the
// registry's /v2/ challenge answered, its bearer token) is reused by the
// lookups of a Resolver before credentials are resolved and the challenge
// answered again, as the layer fetcher does (fetch.TransportTTL). Without
// it every lookup began with a request to /v2/ (and, with credentials, a
// token request). A token that expires sooner is refreshed by the
// transport itself on a 401.
const PullerTTL = 5 * time.Minute

// maxPullers bounds the repositories whose transports a Resolver keeps;
// past it, the oldest goes.
const maxPullers = 256

type cachedPuller struct {
	p    *remote.Puller
	made time.Time
}

// lookup runs f with the options of one lookup of repo: the client's, and
// the repository's transport made by an earlier lookup less than
// PullerTTL ago. Only a transport whose lookup succeeded is kept (made
// with that lookup's context: one lookup's cancellation never fails
// another's), and one whose lookup fails is dropped, so a failure always
// starts again from the registry's challenge.
func (r *Resolver) lookup(ctx context.Context, repo name.Repository, f func(opts []remote.Option) error) error {
	key := repo.Scheme() + "://" + repo.Name()
	r.mu.Lock()
	c, ok := r.pullers[key]
	r.mu.Unlock()
	if !ok || time.Since(c.made) >= PullerTTL {
		p, err := remote.NewPuller(r.client.RemoteOptions()...)
		if err != nil {
			return f(r.remoteOptions(ctx))
		}
		c = cachedPuller{p: p, made: time.Now()}
	}
	err := f(append(r.remoteOptions(ctx), remote.Reuse(c.p)))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if cur, ok := r.pullers[key]; ok && cur.p == c.p {
			delete(r.pullers, key)
		}
		return err
	}
	if cur, ok := r.pullers[key]; ok && cur.p == c.p {
		return nil
	}
	if r.pullers == nil {
		r.pullers = map[string]cachedPuller{}
	}
	if len(r.pullers) >= maxPullers {
		oldest := ""
		for k, v := range r.pullers {
			if oldest == "" || v.made.Before(r.pullers[oldest].made) {
				oldest = k
			}
		}
		delete(r.pullers, oldest)
	}
	r.pullers[key] = c
	return nil
}
