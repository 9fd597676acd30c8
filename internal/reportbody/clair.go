package reportbody

import (
	"github.com/stevedore-dev/stevedore/report"
)

// The IndexReport as Clair's clients read it, on Clair's paths
// (/indexer/api/v1/...). It carries Clair's fields only: Clair's JSON
// Schemas forbid unknown properties, so Stevedore's own fields
// (scanner_state, updated_at, attempt, partial, next_retry, purl) are served
// on the native endpoint (GET /api/v1/reports/{digest}) instead.
//
// What each field must be, and why, where the published contracts disagree
// (see README "Clair's API"):
//
//   - Package kind is written in lower case, "binary" or "source", as Clair
//     writes it (claircore's types.PackageKind marshals to its lower-case
//     name), although Clair's package.schema.json lists "BINARY" and
//     "SOURCE". Clair's readers need the lower-case spelling: claircore's
//     PackageKind.UnmarshalText maps any other spelling to "unknown", and
//     the matcher's vulnerability query filters on package_kind (Debian's
//     advisories are stored for source packages, OVAL's for binary ones), so
//     "BINARY" would match nothing. Clair's own OpenAPI examples and Quay's
//     copy of the document use the lower-case spelling too.
//   - A distribution always carries every field, "cpe" included, even empty:
//     Quay's schema (quay-clair-v4.openapi.json, Distribution) requires all
//     nine, and claircore marshals an unset CPE as "". Clair's
//     cpe.schema.json has no pattern for "".
//   - A source package carries no "source" of its own: Quay's SourcePackage
//     wants a string there, Clair's schema a package.
//   - A CPE is served in a form cpe.schema.json accepts (clairCPE): a 2.3
//     name cut short is completed, an unusable one left out.
//   - Empty optional strings (package cpe, module, arch, normalized version;
//     repository key, uri, cpe) are left out: Clair's schema checks a cpe's
//     pattern, and claircore reads a missing field as its zero value.
type clairReport struct {
	Hash          report.Digest                   `json:"manifest_hash"`
	State         report.State                    `json:"state"`
	Packages      map[string]*clairPackage        `json:"packages"`
	Distributions map[string]*report.Distribution `json:"distributions"`
	Repositories  map[string]*clairRepository     `json:"repository"`
	Environments  map[string][]*clairEnvironment  `json:"environments"`
	Success       bool                            `json:"success"`
	Err           string                          `json:"err"`
}

type clairPackage struct {
	ID                string       `json:"id"`
	Name              string       `json:"name"`
	Version           string       `json:"version"`
	Kind              string       `json:"kind,omitempty"`
	Source            *clairSource `json:"source,omitempty"`
	NormalizedVersion string       `json:"normalized_version,omitempty"`
	Module            string       `json:"module,omitempty"`
	Arch              string       `json:"arch,omitempty"`
	CPE               string       `json:"cpe,omitempty"`
}

// clairSource is a package's source package: a package without a source of
// its own.
type clairSource struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Version           string `json:"version"`
	Kind              string `json:"kind,omitempty"`
	NormalizedVersion string `json:"normalized_version,omitempty"`
	Module            string `json:"module,omitempty"`
	Arch              string `json:"arch,omitempty"`
	CPE               string `json:"cpe,omitempty"`
}

type clairRepository struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	Key  string `json:"key,omitempty"`
	URI  string `json:"uri,omitempty"`
	CPE  string `json:"cpe,omitempty"`
}

type clairEnvironment struct {
	PackageDB      string        `json:"package_db"`
	IntroducedIn   report.Digest `json:"introduced_in"`
	DistributionID string        `json:"distribution_id"`
	RepositoryIDs  []string      `json:"repository_ids,omitempty"`
}

// clairKind returns the package kind as Clair writes it, or "" (left out)
// for a kind Clair has no name for in its API.
func clairKind(k string) string {
	switch k {
	case report.KindBinary, "BINARY":
		return report.KindBinary
	case report.KindSource, "SOURCE":
		return report.KindSource
	}
	return ""
}

// clairView returns r as served on Clair's paths. An IndexPartial report is
// served as IndexFinished (success true) unless servePartial: its results
// are usable, and Clair's clients know no other terminal success (Quay marks
// anything else failed, Clair's matcher answers 404).
func clairView(r *report.Report, servePartial bool) *clairReport {
	out := &clairReport{
		Hash:          r.Hash,
		State:         r.State,
		Packages:      make(map[string]*clairPackage, len(r.Packages)),
		Distributions: make(map[string]*report.Distribution, len(r.Distributions)),
		Repositories:  make(map[string]*clairRepository, len(r.Repositories)),
		Environments:  make(map[string][]*clairEnvironment, len(r.Environments)),
		Success:       r.Success,
		Err:           r.Err,
	}
	switch r.State {
	case report.StateIndexPartial:
		if !servePartial {
			out.State = report.StateIndexFinished
		}
		out.Success = true
	case report.StateIndexFinished:
		out.Success = true
	default:
		out.Success = false
	}
	for id, p := range r.Packages {
		if p == nil {
			continue
		}
		cp := &clairPackage{ID: p.ID, Name: p.Name, Version: p.Version, Kind: clairKind(p.Kind),
			NormalizedVersion: p.NormalizedVersion, Module: p.Module, Arch: p.Arch, CPE: clairCPE(p.CPE)}
		if s := p.Source; s != nil {
			cp.Source = &clairSource{ID: s.ID, Name: s.Name, Version: s.Version, Kind: clairKind(s.Kind),
				NormalizedVersion: s.NormalizedVersion, Module: s.Module, Arch: s.Arch, CPE: clairCPE(s.CPE)}
		}
		out.Packages[id] = cp
	}
	for id, d := range r.Distributions {
		if d == nil {
			continue
		}
		cd := *d // every field as it is (Clair's schema wants all nine), the CPE as Clair's schema accepts it
		cd.CPE = clairCPE(d.CPE)
		out.Distributions[id] = &cd
	}
	for id, rp := range r.Repositories {
		if rp == nil {
			continue
		}
		out.Repositories[id] = &clairRepository{ID: rp.ID, Name: rp.Name, Key: rp.Key, URI: rp.URI, CPE: clairCPE(rp.CPE)}
	}
	for id, envs := range r.Environments {
		ces := make([]*clairEnvironment, 0, len(envs))
		for _, e := range envs {
			if e == nil {
				continue
			}
			ces = append(ces, &clairEnvironment{PackageDB: e.PackageDB, IntroducedIn: e.IntroducedIn,
				DistributionID: e.DistributionID, RepositoryIDs: e.RepositoryIDs})
		}
		out.Environments[id] = ces
	}
	return out
}
