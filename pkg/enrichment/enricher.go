package enrichment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/stevedore-dev/stevedore/pkg/index"
	"github.com/stevedore-dev/stevedore/pkg/rhel"
	"github.com/stevedore-dev/stevedore/pkg/scanners"
)

// KindEnrichment is the scanner kind of enrichers in the scanner-set state.
const KindEnrichment scanners.Kind = "enrichment"

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
	Info() scanners.Info
	// Enrich completes r. Gaps name the data it needed and could not use
	// (the report is then partial); an error is a failure to read it.
	Enrich(ctx context.Context, r *index.Report) ([]Gap, error)
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
	Store  *Store
	MaxAge time.Duration

	mu     sync.Mutex
	digest string
	parsed *RepositoryCPEData
}

// Info implements Enricher.
func (e *RepositoryCPEs) Info() scanners.Info {
	return scanners.Info{Name: RepositoryCPE, Version: "2", Kind: KindEnrichment}
}

// Enrich implements Enricher.
func (e *RepositoryCPEs) Enrich(ctx context.Context, r *index.Report) ([]Gap, error) {
	var repos, dnf []*index.Repository
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
	data, gap, err := e.load(ctx)
	if err != nil || gap != nil {
		if gap != nil {
			return []Gap{*gap}, nil
		}
		return nil, err
	}
	for _, repo := range dnf {
		if _, ok := data.Data[repo.Name]; !ok {
			removeRepository(r, repo.ID)
			continue
		}
		if i := slices.IndexFunc(repos, func(x *index.Repository) bool { return x.Name == repo.Name }); i >= 0 {
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
		for i, c := range cpes[1:] {
			extra := *repo
			extra.ID = repo.ID + "." + strconv.Itoa(i+1)
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

// load returns the parsed mapping, or the gap that stops its use.
func (e *RepositoryCPEs) load(ctx context.Context) (*RepositoryCPEData, *Gap, error) {
	d, err := e.Store.Get(ctx, RepositoryCPE)
	if errors.Is(err, ErrNotLoaded) {
		return nil, &Gap{Data: RepositoryCPE, Reason: "the repository-to-CPE mapping is not loaded: configure its URL or import it (stevedore enrichment import " + RepositoryCPE + " FILE)" + lastError(d)}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if age := time.Since(d.LoadedAt); e.MaxAge > 0 && age > e.MaxAge {
		return nil, &Gap{Data: RepositoryCPE, Reason: fmt.Sprintf("the repository-to-CPE mapping from %s was last confirmed %s ago, older than the allowed %s%s",
			d.Source, age.Round(time.Second), e.MaxAge, lastError(d))}, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.digest != d.Digest {
		var parsed RepositoryCPEData
		if err := json.Unmarshal(d.Raw, &parsed); err != nil {
			return nil, &Gap{Data: RepositoryCPE, Reason: "the loaded repository-to-CPE mapping is unusable: " + err.Error()}, nil
		}
		e.digest, e.parsed = d.Digest, &parsed
	}
	return e.parsed, nil, nil
}

func lastError(d *Dataset) string {
	if d == nil || d.LastError == "" {
		return ""
	}
	return " (last update: " + d.LastError + ")"
}
