package enrich

import (
	"slices"

	"github.com/stevedore-dev/stevedore/report"
)

// removeRepository deletes repository id from r and from every
// Environment's RepositoryIDs.
func removeRepository(r *report.Report, id string) {
	delete(r.Repositories, id)
	for _, envs := range r.Environments {
		for _, env := range envs {
			env.RepositoryIDs = slices.DeleteFunc(env.RepositoryIDs, func(x string) bool { return x == id })
		}
	}
}

// replaceRepository deletes repository id from r and, in every Environment
// that pointed at it, puts the ids by in its place (in order, without
// repeating an id the Environment already has).
func replaceRepository(r *report.Report, id string, by []string) {
	delete(r.Repositories, id)
	for _, envs := range r.Environments {
		for _, env := range envs {
			i := slices.Index(env.RepositoryIDs, id)
			if i < 0 {
				continue
			}
			ids := slices.Clone(env.RepositoryIDs[:i])
			for _, x := range by {
				if !slices.Contains(ids, x) && !slices.Contains(env.RepositoryIDs[i+1:], x) {
					ids = append(ids, x)
				}
			}
			for _, x := range env.RepositoryIDs[i+1:] {
				if x != id {
					ids = append(ids, x)
				}
			}
			env.RepositoryIDs = ids
		}
	}
}
