package resolve

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// lookup runs f with the options of one lookup of repo: the client's, and
// the repository's puller (its authenticated transport) made by an earlier
// lookup less than registry.AuthTTL ago, as the layer fetcher reuses its
// transports; without it every lookup began with a request to /v2/ (and,
// with credentials, a token request). Only a puller whose lookup succeeded
// is kept (made with that lookup's context: one lookup's cancellation
// never fails another's), and one whose lookup fails is dropped, so a
// failure always starts again from the registry's challenge.
func (r *Resolver) lookup(ctx context.Context, repo name.Repository, f func(opts []remote.Option) error) error {
	key := repo.Scheme() + "://" + repo.Name()
	p, kept := r.pullers.Get(key)
	if !kept {
		var err error
		if p, err = remote.NewPuller(r.client.RemoteOptions()...); err != nil {
			return f(r.remoteOptions(ctx))
		}
	}
	if err := f(append(r.remoteOptions(ctx), remote.Reuse(p))); err != nil {
		r.pullers.Delete(key, func(cur *remote.Puller) bool { return cur == p })
		return err
	}
	if !kept {
		r.pullers.Put(key, p)
	}
	return nil
}
