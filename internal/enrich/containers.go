package enrich

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
)

// ContainerNames resolves the component names of Red Hat images
// (rhel.ContainerNameKey repositories, read from the build Dockerfile by the
// rhel-dockerfile scanner) to the image's content sets, with the
// container-name-to-repositories mapping loaded ahead of time. It runs
// before RepositoryCPEs, which gives the content sets their CPEs.
//
//   - A report that already has content sets (rhel.ContentSetKey, from
//     content manifests, which are authoritative) loses its component
//     names, and the mapping is not needed.
//   - Otherwise each component name is replaced, in the report and in the
//     Environments that point at it (in place, in order, without
//     duplicates), by one rhel.ContentSetKey repository per content set the
//     mapping lists for it; a content set already in the report (from
//     another name) is reused. A name the mapping does not list is removed
//     with its links: the mapping is authoritative.
//   - A mapping that is missing, older than MaxAge or unusable is a gap,
//     and the report is left as it is.
//
// New repositories get ids "<id>.<n>" from the id of the name they replace,
// n = 1, 2, ..., skipping ids the report has.
type ContainerNames struct {
	Store *Store
	// MaxAge is how long after it was last confirmed current the mapping
	// may be used (0: no limit).
	MaxAge time.Duration

	cache parsedCache[ContainerRepositoriesData]
}

var _ Enricher = (*ContainerNames)(nil)

// Info implements Enricher: "rhel-container-repositories", version "1".
func (e *ContainerNames) Info() scanner.Info {
	return scanner.Info{Name: ContainerRepositories, Version: "1", Kind: KindEnrichment}
}

// Enrich implements Enricher.
func (e *ContainerNames) Enrich(ctx context.Context, r *report.Report) ([]Gap, error) {
	var names []*report.Repository
	// The content sets in the report, by name (the first by id), and
	// those added below.
	sets := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(r.Repositories)) {
		switch repo := r.Repositories[id]; repo.Key {
		case rhel.ContainerNameKey:
			names = append(names, repo)
		case rhel.ContentSetKey:
			if _, ok := sets[repo.Name]; !ok {
				sets[repo.Name] = id
			}
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	if len(sets) > 0 {
		for _, repo := range names {
			removeRepository(r, repo.ID)
		}
		return nil, nil
	}
	data, gaps, err := e.cache.load(ctx, e.Store, ContainerRepositories, "container-name-to-repositories mapping", e.MaxAge)
	if err != nil || gaps != nil {
		return gaps, err
	}
	for _, repo := range names {
		var ids []string
		for _, set := range data.Data[repo.Name] {
			id, ok := sets[set]
			if !ok {
				id = freeID(r, repo.ID)
				r.Repositories[id] = &report.Repository{ID: id, Name: set, Key: rhel.ContentSetKey}
				sets[set] = id
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		replaceRepository(r, repo.ID, ids)
	}
	return nil, nil
}

// freeID returns the first id "<base>.<n>", n = 1, 2, ..., that r does not
// have.
func freeID(r *report.Report, base string) string {
	for n := 1; ; n++ {
		id := base + "." + strconv.Itoa(n)
		if _, taken := r.Repositories[id]; !taken {
			return id
		}
	}
}
