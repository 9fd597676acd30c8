// Package summary renders an IndexReport for people: the distribution,
// package counts by database, and the packages.
package summary

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/stevedore-dev/stevedore/pkg/index"
)

// Write prints a readable summary of r; top bounds the package list (0: all).
func Write(w io.Writer, title string, r *index.Report, top int) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Image:\t%s\n", title)
	fmt.Fprintf(tw, "Manifest:\t%s\n", r.Hash)
	fmt.Fprintf(tw, "State:\t%s\n", r.State)
	if r.Err != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", r.Err)
	}
	for _, p := range r.Partial {
		fmt.Fprintf(tw, "Missing:\t%s: %s\n", p.Scanner, p.Reason)
	}
	if r.State == index.StateIndexPartial {
		next := "not scheduled"
		if r.NextRetry != nil {
			next = r.NextRetry.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "Attempt:\t%d, next retry %s\n", r.Attempt, next)
	}
	dists := sortedValues(r.Distributions, func(d *index.Distribution) string { return d.ID })
	if len(dists) == 0 {
		fmt.Fprintf(tw, "Distribution:\t(none found)\n")
	}
	for _, d := range dists {
		name := d.PrettyName
		if name == "" {
			name = d.Name + " " + d.Version
		}
		fmt.Fprintf(tw, "Distribution:\t%s\t[%s %s]\n", name, d.DID, d.VersionID)
	}
	byDB := map[string]int{}
	sources := map[string]bool{}
	for id, envs := range r.Environments {
		for _, e := range envs {
			byDB[e.PackageDB]++
		}
		if p := r.Packages[id]; p != nil && p.Source != nil {
			sources[p.Source.Name] = true
		}
	}
	fmt.Fprintf(tw, "Packages:\t%d (from %d source packages)\n", len(r.Packages), len(sources))
	dbs := make([]string, 0, len(byDB))
	for db := range byDB {
		dbs = append(dbs, db)
	}
	slices.Sort(dbs)
	for _, db := range dbs {
		fmt.Fprintf(tw, "\t%d in %s\n", byDB[db], db)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	pkgs := sortedValues(r.Packages, func(p *index.Package) string { return p.Name + "\x00" + p.Version })
	if len(pkgs) == 0 {
		return nil
	}
	shown := pkgs
	if top > 0 && len(pkgs) > top {
		shown = pkgs[:top]
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tARCH\tSOURCE")
	for _, p := range shown {
		src := ""
		if p.Source != nil && (p.Source.Name != p.Name || p.Source.Version != p.Version) {
			src = p.Source.Name + " " + p.Source.Version
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Version, p.Arch, src)
	}
	if len(shown) < len(pkgs) {
		fmt.Fprintf(tw, "... and %d more (--top 0 lists all, --format json gives the report)\n", len(pkgs)-len(shown))
	}
	return tw.Flush()
}

func sortedValues[T any](m map[string]T, key func(T) string) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return out
}
