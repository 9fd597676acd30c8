package enrich

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
)

// KindEnrichment is the scanner kind of enrichers in the scanner-set state.
const KindEnrichment scanner.Kind = "enrichment"

// Gap is enrichment data a report needed and could not use.
type Gap struct {
	// Data is the name of the data set.
	Data string
	// Reason says what is wrong, for the report and its reader.
	Reason string
}

// Enricher completes a coalesced report from loaded data.
type Enricher interface {
	// Info identifies the enricher; it is part of the scanner-set state.
	Info() scanner.Info
	// Enrich completes r. Gaps name the data it needed and could not use
	// (the report is then partial); an error is a failure to read it.
	Enrich(ctx context.Context, r *report.Report) ([]Gap, error)
}

// RHELRepositoryKey marks repositories named by Red Hat content sets, whose
// CPEs come from the repository-to-CPE mapping.
const RHELRepositoryKey = rhel.ContentSetKey

// RepositoryCPEs fills the CPEs of Red Hat repositories from the
// repository-to-CPE mapping. A content set (rhel.ContentSetKey) the mapping
// does not list keeps no CPE (the mapping is authoritative). A dnf repoid
// (rhel.DNFRepoKey) the mapping lists becomes that content set (merged with
// a content set of the same name already in the report); one it does not
// list is not a Red Hat repository (Fedora's "updates", a local repository)
// and is removed with its links. A mapping that is missing or older than
// MaxAge is a gap.
type RepositoryCPEs struct {
	Store *Store
	// MaxAge is how long after it was last confirmed current the mapping
	// may be used (0: no limit).
	MaxAge time.Duration

	cache parsedCache[RepositoryCPEData]
}

// Info implements Enricher.
func (e *RepositoryCPEs) Info() scanner.Info {
	return scanner.Info{Name: RepositoryCPE, Version: "2", Kind: KindEnrichment}
}

// Enrich implements Enricher.
func (e *RepositoryCPEs) Enrich(ctx context.Context, r *report.Report) ([]Gap, error) {
	var repos, dnf []*report.Repository
	for _, id := range slices.Sorted(maps.Keys(r.Repositories)) {
		switch repo := r.Repositories[id]; repo.Key {
		case rhel.ContentSetKey:
			repos = append(repos, repo)
		case rhel.DNFRepoKey:
			dnf = append(dnf, repo)
		}
	}
	if len(repos) == 0 && len(dnf) == 0 {
		return nil, nil
	}
	data, gaps, err := e.cache.load(ctx, e.Store, RepositoryCPE, "repository-to-CPE mapping", e.MaxAge)
	if err != nil || gaps != nil {
		return gaps, err
	}
	for _, repo := range dnf {
		if _, ok := data.Data[repo.Name]; !ok {
			removeRepository(r, repo.ID)
			continue
		}
		if i := slices.IndexFunc(repos, func(x *report.Repository) bool { return x.Name == repo.Name }); i >= 0 {
			replaceRepository(r, repo.ID, []string{repos[i].ID})
			continue
		}
		repo.Key = rhel.ContentSetKey
		repos = append(repos, repo)
	}
	for _, repo := range repos {
		cpes := data.Data[repo.Name].CPEs
		if len(cpes) == 0 {
			continue
		}
		repo.CPE = cpes[0]
		// One repository per CPE, as Clair reports them; packages that
		// came from the repository point at each.
		for _, c := range cpes[1:] {
			extra := *repo
			extra.ID = freeID(r, repo.ID)
			extra.CPE = c
			r.Repositories[extra.ID] = &extra
			for _, envs := range r.Environments {
				for _, env := range envs {
					if slices.Contains(env.RepositoryIDs, repo.ID) {
						env.RepositoryIDs = append(env.RepositoryIDs, extra.ID)
					}
				}
			}
		}
	}
	return nil, nil
}
