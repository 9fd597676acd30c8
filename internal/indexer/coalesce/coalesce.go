// Package coalesce builds the image's index report from its layers' stored
// scan results, applying the overlay filesystem's rules: a file in a higher
// layer replaces the same path below, a whiteout deletes a path (and
// everything under it) from the layers below, and an opaque directory hides
// everything the layers below had under it.
//
// Package databases are files: Package.PackageDB names the database a package
// was read from ("var/lib/dpkg/status", "var/lib/dpkg/status.d/libc6",
// "lib/apk/db/installed"). For each database path, the packages that count
// are those of the topmost layer that has the database, unless a higher
// layer deletes that path. A layer "has" a database when it is listed in
// Layer.PackageDBs (its scanner was given the file) or it reported a package
// from it: a database that a higher layer rewrote empty hides the lower
// copies.
//
// A language package (one read from a file: Package.Filepath is set) whose
// file is owned by an OS package of the image is dropped: the OS package
// reports it (a Python module installed by dpkg or rpm is reported once).
// Layer.OwnedFiles are the files the OS package scanners said their packages
// own; an owned path counts unless a higher layer deletes it (a package
// removed by its package manager takes its files with it). A package's file
// is owned when its Filepath is owned, or the .dist-info or .egg-info
// directory holding it is.
//
// Language packages are given what claircore's indexer gives them, so that
// Clair's matchers select and compare them (see internal/ecosystem): the name and
// version as claircore writes them (Go's standard library "1.22.1", not
// "go1.22.1"; Python names in lower case), claircore's normalized version, one repository record per ecosystem that
// their environments point at, and no distribution. Every package has a
// source package, an empty one when none is known, as in claircore's
// reports (Clair's matcher reads the source of every package it queries).
package coalesce

import (
	"cmp"
	"encoding/json"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/stevedore-dev/stevedore/internal/ecosystem"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
)

// Version is the version of the coalescer's rules: a change to what Coalesce
// makes of the same stored scan results changes it. It is part of the
// scanner-set state (internal/indexer.State), so that reports coalesced under
// older rules are stale and are coalesced again, from the stored results,
// without fetching a layer.
//
// 2: language packages in claircore's form (repositories, normalized
// versions, Go's standard library version, Python names, no distribution) and an empty
// source package for packages without one.
//
// 3: apk packages' PURLs name the image's distribution (namespace "wolfi",
// "chainguard" or "alpine", and a distro qualifier).
const Version = "3"

// Layer is one layer's stored scan results.
type Layer struct {
	// Digest is the layer's digest; it becomes Environment.IntroducedIn.
	Digest report.Digest
	// Whiteouts are the paths this layer deletes from the layers below
	// (with everything under them); OpaqueDirs the directories whose
	// lower contents it hides ("." is the root). Both as layer.Contents
	// reports them: clean, relative, slash-separated.
	Whiteouts, OpaqueDirs []string
	// Packages found in the layer, with PackageDB set. Packages without a
	// PackageDB are grouped as one database that no whiteout deletes.
	Packages []*report.Package
	// PackageDBs are the package databases present in the layer, whether
	// or not they held packages (the files the package scanners read).
	PackageDBs []string
	// Distributions found in the layer.
	Distributions []*report.Distribution
	// DistributionPaths, parallel to Distributions, is the file each
	// distribution was read from ("etc/os-release"), so that a higher
	// layer that deletes the file hides it. A missing or empty entry
	// means the path is unknown: the distribution is never hidden.
	DistributionPaths []string
	// Repositories found in the layer.
	Repositories []*report.Repository
	// RepositoryPaths, parallel to Repositories, is the file each
	// repository was read from. Repositories read from the same path
	// follow the package-database rule (the topmost layer with that path
	// wins unless a higher layer deletes it). A missing or empty entry
	// means the path is unknown: the repository always counts.
	RepositoryPaths []string
	// OwnedFiles are the files an OS package manager says packages of
	// this layer's databases own (scanner.Result.OwnedFiles): clean,
	// relative paths.
	OwnedFiles []string
}

// Coalesce builds the report for a manifest from its layers' results, bottom
// layer first. The inputs are not modified.
//
// The report holds:
//   - Packages: those of the surviving databases (see the package
//     documentation). A package found in several databases is one package
//     with one Environment per database.
//   - Environments[id]: per database, IntroducedIn is the lowest layer L
//     such that every layer from L up to the winning one that has the
//     database lists the package (same name, version, arch, kind, module
//     and source); layers without the database do not break the run, a
//     deletion of the database does. DistributionID is the image's
//     distribution ("" when none, and for language packages).
//     RepositoryIDs links rpm packages to the Red Hat repositories of the
//     layer they were introduced in (see below), and language packages to
//     their ecosystem's repository; it is empty for other packages.
//   - Distributions: the first surviving distribution of the topmost layer
//     that has one.
//   - Repositories: the surviving repositories of all layers, deduplicated,
//     then the repository of each language ecosystem that has packages in
//     the report (ids after the others, in ecosystem.All order).
//
// Red Hat repositories (those whose Key satisfies rhel.IsRepositoryKey) are
// linked to rpm packages as Clair's RHEL coalescer links them: a package
// read from an rpm database points at the Red Hat repositories of the layer
// it was introduced in; a layer without any borrows those of the nearest
// layer below that has some, or, when there is none below, of the nearest
// layer above (an image built on a Red Hat base, or a base whose content
// manifest came in a later layer). A package whose RepositoryHint names a
// dnf repoid that is among those repositories points at that one only.
//
// Language packages whose file an OS package owns are left out first (see
// the package documentation).
//
// Ids are "1", "2", ... assigned in a sorted order of the content, so the
// same input always gives byte-identical JSON. Source packages get ids in
// the same sequence as packages. The state is IndexFinished with Success;
// the caller adjusts it.
func Coalesce(manifest report.Digest, layers []Layer) *report.Report {
	r := report.NewReport(manifest, report.StateIndexFinished)
	r.Success = true

	dels := deletionsOf(layers)
	layers = dropOwned(layers, dels)
	layers = languageForm(layers)
	distID := coalesceDistribution(r, layers, dels)
	links := coalesceRepositories(r, layers, dels)
	coalescePackages(r, layers, dels, distID, links)
	apkPURLs(r, distID)
	linkEcosystems(r)
	for _, p := range r.Packages {
		if p.Source == nil && len(r.Environments[p.ID]) > 0 {
			p.Source = &report.Package{}
		}
	}
	return r
}

// languageForm returns layers whose language packages have their name,
// version and normalized version as claircore writes them (copies of the layers and
// packages that change; the inputs are not modified).
func languageForm(layers []Layer) []Layer {
	var out []Layer
	for j, l := range layers {
		cloned := false
		for i, p := range l.Packages {
			e := ecosystem.Of(p)
			if e == ecosystem.None {
				continue
			}
			n, v := e.Name(p.Name), e.Version(p.Name, p.Version)
			nv := p.NormalizedVersion
			if nv == "" {
				nv = e.NormalizedVersion(v)
			}
			if n == p.Name && v == p.Version && nv == p.NormalizedVersion {
				continue
			}
			if out == nil {
				out = slices.Clone(layers)
			}
			if !cloned {
				out[j].Packages = slices.Clone(l.Packages)
				cloned = true
			}
			c := *p
			c.Name, c.Version, c.NormalizedVersion = n, v, nv
			out[j].Packages[i] = &c
		}
	}
	if out == nil {
		return layers
	}
	return out
}

// linkEcosystems adds the repository of each language ecosystem with
// packages in r, and points those packages' environments at it.
func linkEcosystems(r *report.Report) {
	byEco := map[ecosystem.Ecosystem][]*report.Package{}
	for _, p := range r.Packages {
		if e := ecosystem.Of(p); e != ecosystem.None && len(r.Environments[p.ID]) > 0 {
			byEco[e] = append(byEco[e], p)
		}
	}
	next := len(r.Repositories) + 1
	for _, e := range ecosystem.All() {
		if len(byEco[e]) == 0 {
			continue
		}
		repo := e.Repository()
		repo.ID = strconv.Itoa(next)
		next++
		r.Repositories[repo.ID] = repo
		for _, p := range byEco[e] {
			for _, env := range r.Environments[p.ID] {
				env.RepositoryIDs = []string{repo.ID}
			}
		}
	}
}

// dropOwned returns layers without the language packages whose file is
// owned by an OS package (copies of the layers that lose packages; the
// inputs are not modified).
func dropOwned(layers []Layer, dels []deletions) []Layer {
	owned := map[string]bool{}
	for j, l := range layers {
		for _, p := range l.OwnedFiles {
			if !deletedAbove(dels, j, p) {
				owned[p] = true
			}
		}
	}
	if len(owned) == 0 {
		return layers
	}
	var out []Layer
	for j, l := range layers {
		keep := slices.DeleteFunc(slices.Clone(l.Packages), func(p *report.Package) bool {
			return p != nil && p.Filepath != "" && isOwned(p.Filepath, owned)
		})
		if len(keep) == len(l.Packages) {
			continue
		}
		if out == nil {
			out = slices.Clone(layers)
		}
		out[j].Packages = keep
	}
	if out == nil {
		return layers
	}
	return out
}

// isOwned reports whether the file at fp, or the .dist-info or .egg-info
// directory holding it, is in owned.
func isOwned(fp string, owned map[string]bool) bool {
	if owned[fp] {
		return true
	}
	for d := path.Dir(fp); d != "." && d != "/" && d != ""; d = path.Dir(d) {
		if (strings.HasSuffix(d, ".dist-info") || strings.HasSuffix(d, ".egg-info")) && owned[d] {
			return true
		}
	}
	return false
}

// deletions is what one layer deletes from the layers below it, as sets
// so that a check costs the depth of the path, not the number of whiteouts.
type deletions struct {
	whiteouts map[string]bool // the path and everything under it
	opaque    map[string]bool // everything under the dir ("." is the root)
}

func deletionsOf(layers []Layer) []deletions {
	ds := make([]deletions, len(layers))
	for j, l := range layers {
		d := deletions{whiteouts: make(map[string]bool, len(l.Whiteouts)), opaque: make(map[string]bool, len(l.OpaqueDirs))}
		for _, w := range l.Whiteouts {
			d.whiteouts[w] = true
		}
		for _, o := range l.OpaqueDirs {
			if o == "" {
				o = "."
			}
			d.opaque[o] = true
		}
		ds[j] = d
	}
	return ds
}

// deletes reports whether the layer deletes path p of the layers below it:
// a whiteout of p or of a directory above it, or an opaque directory above
// it (or at p: the file became a directory). The empty path is never
// deleted.
func (d *deletions) deletes(p string) bool {
	if p == "" {
		return false
	}
	if d.opaque["."] {
		return true
	}
	for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
		if d.whiteouts[q] || d.opaque[q] {
			return true
		}
	}
	return false
}

// deletedAbove reports whether a layer above layer j deletes path p.
func deletedAbove(dels []deletions, j int, p string) bool {
	for k := j + 1; k < len(dels); k++ {
		if dels[k].deletes(p) {
			return true
		}
	}
	return false
}

func pathAt(paths []string, i int) string {
	if i < len(paths) {
		return paths[i]
	}
	return ""
}

func coalesceDistribution(r *report.Report, layers []Layer, dels []deletions) string {
	for j := len(layers) - 1; j >= 0; j-- {
		for i, d := range layers[j].Distributions {
			if d == nil || deletedAbove(dels, j, pathAt(layers[j].DistributionPaths, i)) {
				continue
			}
			c := *d
			c.ID = "1"
			r.Distributions[c.ID] = &c
			return c.ID
		}
	}
	return ""
}

// coalesceRepositories adds the surviving repositories of the layers to r
// and returns, per layer, the Red Hat repositories its rpm packages link to
// (shared across layers as Coalesce documents).
func coalesceRepositories(r *report.Report, layers []Layer, dels []deletions) [][]*report.Repository {
	// For each path, the topmost layer with repositories from it.
	top := map[string]int{}
	for j, l := range layers {
		for i, repo := range l.Repositories {
			if p := pathAt(l.RepositoryPaths, i); repo != nil && p != "" {
				top[p] = j
			}
		}
	}
	byKey := map[string]*report.Repository{}
	own := make([][]*report.Repository, len(layers)) // each layer's Red Hat repositories
	for j, l := range layers {
		for i, repo := range l.Repositories {
			if repo == nil {
				continue
			}
			if p := pathAt(l.RepositoryPaths, i); p != "" && (top[p] != j || deletedAbove(dels, j, p)) {
				continue
			}
			c := *repo
			c.ID = ""
			k := jsonKey(&c)
			if _, ok := byKey[k]; !ok {
				byKey[k] = &c
			}
			if rhel.IsRepositoryKey(c.Key) && !slices.Contains(own[j], byKey[k]) {
				own[j] = append(own[j], byKey[k])
			}
		}
	}
	for i, k := range sortedKeys(byKey) {
		repo := byKey[k]
		repo.ID = strconv.Itoa(i + 1)
		r.Repositories[repo.ID] = repo
	}
	return shareRepositories(own)
}

// shareRepositories gives each layer without Red Hat repositories those of
// the nearest layer below that has some, else of the nearest above.
func shareRepositories(own [][]*report.Repository) [][]*report.Repository {
	shared := slices.Clone(own)
	var last []*report.Repository
	for j := range shared {
		if len(own[j]) > 0 {
			last = own[j]
		} else {
			shared[j] = last
		}
	}
	last = nil
	for j := len(shared) - 1; j >= 0; j-- {
		if len(own[j]) > 0 {
			last = own[j]
		} else if len(shared[j]) == 0 {
			shared[j] = last
		}
	}
	return shared
}

// repositoryIDs returns the ids of the repositories an rpm package read
// from database db links to, sorted by id: those of repos, or, when the
// package's hint names a dnf repoid that one of them has as its name, only
// those. Packages of other databases link to none.
func repositoryIDs(p *report.Package, db string, repos []*report.Repository) []string {
	ids := []string{}
	if len(repos) == 0 || !isRPMDatabase(db) {
		return ids
	}
	repoid := rhel.Repoid(p.RepositoryHint)
	if repoid != "" && slices.ContainsFunc(repos, func(r *report.Repository) bool { return r.Name == repoid }) {
		for _, r := range repos {
			if r.Name == repoid {
				ids = append(ids, r.ID)
			}
		}
	} else {
		for _, r := range repos {
			ids = append(ids, r.ID)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		ai, _ := strconv.Atoi(a)
		bi, _ := strconv.Atoi(b)
		return cmp.Compare(ai, bi)
	})
	return ids
}

// isRPMDatabase reports whether db is the path of an rpm database: a file
// in var/lib/rpm or usr/lib/sysimage/rpm, where rpm keeps it.
func isRPMDatabase(db string) bool {
	dir := path.Dir(db)
	return dir == "var/lib/rpm" || dir == "usr/lib/sysimage/rpm"
}

// found is a package as it survives in one database.
type found struct {
	pkg        *report.Package
	db         string
	introduced report.Digest
	layer      int // the index of the layer it was introduced in
}

// coalescePackages adds to r the packages that survive in each package
// database of the layers, numbered in content order, with their environments.
func coalescePackages(r *report.Report, layers []Layer, dels []deletions, distID string, links [][]*report.Repository) {
	copies := dbCopies(layers)
	var all []found
	for _, db := range sortedKeys(copies) {
		all = append(all, coalesceDB(layers, dels, db, copies[db])...)
	}
	keys, ids := numberPackages(all)
	for i, f := range all {
		id := ids[keys[i]]
		if _, ok := r.Packages[id]; !ok {
			p := clean(f.pkg)
			p.ID = id
			if p.Source != nil {
				p.Source.ID = ids[jsonKey(clean(f.pkg.Source))]
			}
			r.Packages[id] = p
		}
		env := &report.Environment{
			PackageDB:      f.db,
			IntroducedIn:   f.introduced,
			DistributionID: distID,
			RepositoryIDs:  repositoryIDs(f.pkg, f.db, links[f.layer]),
		}
		if f.pkg.Filepath != "" {
			// A language package: claircore's language coalescers
			// give it no distribution, and OS matchers must not
			// select it (a gem "rake" is not Debian's "rake").
			env.DistributionID = ""
		}
		envs := r.Environments[id]
		if !slices.ContainsFunc(envs, func(e *report.Environment) bool {
			return e.PackageDB == env.PackageDB && e.IntroducedIn == env.IntroducedIn
		}) {
			r.Environments[id] = append(envs, env)
		}
	}
	for _, envs := range r.Environments {
		slices.SortFunc(envs, func(a, b *report.Environment) int {
			return cmp.Or(cmp.Compare(a.PackageDB, b.PackageDB), cmp.Compare(a.IntroducedIn, b.IntroducedIn))
		})
	}
}

// dbCopies returns, per package database, its copies in the layers that
// have it, bottom first.
func dbCopies(layers []Layer) map[string][]dbCopy {
	copies := map[string][]dbCopy{}
	for j, l := range layers {
		for _, db := range slices.Sorted(slices.Values(l.PackageDBs)) {
			cs := copies[db]
			if len(cs) == 0 || cs[len(cs)-1].layer != j {
				copies[db] = append(cs, dbCopy{layer: j})
			}
		}
		for _, p := range l.Packages {
			if p == nil {
				continue
			}
			cs := copies[p.PackageDB]
			if len(cs) == 0 || cs[len(cs)-1].layer != j {
				cs = append(cs, dbCopy{layer: j})
			}
			cs[len(cs)-1].pkgs = append(cs[len(cs)-1].pkgs, p)
			copies[p.PackageDB] = cs
		}
	}
	return copies
}

// numberPackages numbers the distinct packages of all, binary and source,
// in content order: it returns the content key of each of all's packages,
// and the id of each key.
func numberPackages(all []found) (keys []string, ids map[string]string) {
	type entry struct {
		key string
		pkg *report.Package // representative, without id
	}
	distinct := map[string]*entry{}
	note := func(p *report.Package) string {
		c := clean(p)
		k := jsonKey(c)
		if _, ok := distinct[k]; !ok {
			distinct[k] = &entry{key: k, pkg: c}
		}
		return k
	}
	keys = make([]string, len(all))
	for i, f := range all {
		keys[i] = note(f.pkg)
		if f.pkg.Source != nil {
			note(f.pkg.Source)
		}
	}
	entries := make([]*entry, 0, len(distinct))
	for _, e := range distinct {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *entry) int {
		return cmp.Or(
			cmp.Compare(a.pkg.Name, b.pkg.Name),
			cmp.Compare(a.pkg.Version, b.pkg.Version),
			cmp.Compare(a.pkg.Kind, b.pkg.Kind),
			cmp.Compare(a.pkg.Arch, b.pkg.Arch),
			cmp.Compare(a.key, b.key),
		)
	})
	ids = make(map[string]string, len(entries))
	for i, e := range entries {
		ids[e.key] = strconv.Itoa(i + 1)
	}
	return keys, ids
}

// dbCopy is a layer's copy of a package database.
type dbCopy struct {
	layer int
	pkgs  []*report.Package
}

// coalesceDB returns the surviving packages of database db, given its copies
// (bottom first), with the layer each was introduced in.
func coalesceDB(layers []Layer, dels []deletions, db string, copies []dbCopy) []found {
	top := copies[len(copies)-1]
	if deletedAbove(dels, top.layer, db) {
		return nil
	}
	// Walk up the layers that have the database: intro[k] is the first
	// layer of the unbroken run in which package identity k is present.
	intro := map[string]int{}
	prev := -1 // the last layer that had the database, in the current run
	for _, c := range copies {
		j := c.layer
		// A deletion above the previous copy, up to and including this
		// layer (its whiteouts apply to the layers below it), breaks the
		// run; so does having no previous copy.
		deleted := prev < 0
		for k := prev + 1; k <= j && !deleted; k++ {
			deleted = dels[k].deletes(db)
		}
		next := map[string]int{}
		for _, p := range c.pkgs {
			k := runKey(p)
			if _, ok := next[k]; ok {
				continue
			}
			if at, ok := intro[k]; ok && !deleted {
				next[k] = at
			} else {
				next[k] = j
			}
		}
		intro, prev = next, j
	}
	var out []found
	for _, p := range top.pkgs {
		at := intro[runKey(p)]
		out = append(out, found{pkg: p, db: db, introduced: layers[at].Digest, layer: at})
	}
	return out
}

// runKey is a package's identity for IntroducedIn: the same package in a
// higher layer's copy of a database continues the run.
func runKey(p *report.Package) string {
	type src struct{ Name, Version, Kind, Arch, Module string }
	type key struct {
		Name, Version, Arch, Kind, Module string
		Source                            *src
	}
	k := key{Name: p.Name, Version: p.Version, Arch: p.Arch, Kind: p.Kind, Module: p.Module}
	if s := p.Source; s != nil {
		k.Source = &src{s.Name, s.Version, s.Kind, s.Arch, s.Module}
	}
	return jsonKey(k)
}

// clean returns a copy of p, and of its sources, without ids and without
// PackageDB (which the Environment carries).
func clean(p *report.Package) *report.Package {
	c := *p
	c.ID, c.PackageDB = "", ""
	if p.Source != nil {
		c.Source = clean(p.Source)
	}
	return &c
}

// jsonKey is v's JSON encoding, a canonical form of the structs here.
func jsonKey(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("coalesce: " + err.Error()) // plain structs of strings cannot fail
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
