// Package summary renders an IndexReport for people: the distribution, the
// package count per ecosystem, and a package table (name, version, type,
// location), grouped by ecosystem.
package summary

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stevedore-dev/stevedore/report"
)

// Type is the ecosystem of p as a short name: its package URL's type
// ("deb", "npm", "maven", "pypi", "rpm", "apk", "gem"; "go" for golang),
// or "other" without one.
func Type(p *report.Package) string {
	rest, ok := strings.CutPrefix(p.PURL, "pkg:")
	if !ok {
		return "other"
	}
	t, _, _ := strings.Cut(rest, "/")
	t = strings.ToLower(t)
	if t == "golang" {
		return "go"
	}
	// The purl spec's type: a letter, then letters, digits, ".", "+", "-".
	for i, c := range t {
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '+' || c == '-')) {
			return "other"
		}
	}
	if t == "" {
		return "other"
	}
	return t
}

// Count is the number of packages of one ecosystem.
type Count struct {
	Type string
	N    int
}

// Counts are r's packages per ecosystem, most first (ties by name).
func Counts(r *report.Report) []Count {
	by := map[string]int{}
	for _, p := range r.Packages {
		by[Type(p)]++
	}
	out := make([]Count, 0, len(by))
	for t, n := range by {
		out = append(out, Count{t, n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return cmp.Compare(a.Type, b.Type)
	})
	return out
}

// Write prints a readable summary of r; top bounds the package table (0:
// all).
func Write(w io.Writer, title string, r *report.Report, top int) error {
	counts := Counts(r)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	writeHeader(tw, title, r)
	fmt.Fprintf(tw, "Packages:\t%s\n", packagesLine(r, counts))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Packages) == 0 {
		return nil
	}
	return writePackages(w, r, counts, top)
}

// writeHeader prints what the report is of, its state and distributions.
func writeHeader(tw io.Writer, title string, r *report.Report) {
	fmt.Fprintf(tw, "Image:\t%s\n", title)
	fmt.Fprintf(tw, "Manifest:\t%s\n", r.Hash)
	fmt.Fprintf(tw, "State:\t%s\n", r.State)
	if r.Err != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", r.Err)
	}
	for _, p := range r.Partial {
		fmt.Fprintf(tw, "Missing:\t%s: %s\n", p.Scanner, p.Reason)
	}
	if r.State == report.StateIndexPartial {
		next := "not scheduled"
		if r.NextRetry != nil {
			next = r.NextRetry.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "Attempt:\t%d, next retry %s\n", r.Attempt, next)
	}
	dists := sortedValues(r.Distributions, func(d *report.Distribution) string { return d.ID })
	if len(dists) == 0 {
		fmt.Fprintf(tw, "Distribution:\t(none found)\n")
	}
	for _, d := range dists {
		name := d.PrettyName
		if name == "" {
			name = d.Name + " " + d.Version
		}
		fmt.Fprintf(tw, "Distribution:\t%s  [%s %s]\n", clean(name), clean(d.DID), clean(d.VersionID))
	}
}

// packagesLine counts the packages, per type and their source packages.
func packagesLine(r *report.Report, counts []Count) string {
	sources := map[string]bool{}
	for _, p := range r.Packages {
		if p.Source != nil {
			sources[p.Source.Name] = true
		}
	}
	parts := make([]string, len(counts))
	for i, c := range counts {
		parts[i] = fmt.Sprintf("%s %d", c.Type, c.N)
	}
	line := fmt.Sprintf("%d", len(r.Packages))
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	if len(sources) > 0 {
		line += fmt.Sprintf(" (from %d source packages)", len(sources))
	}
	return line
}

// writePackages prints the package table, the most common types first, at
// most top rows (0: all).
func writePackages(w io.Writer, r *report.Report, counts []Count, top int) error {
	type row struct{ name, version, typ, location string }
	rows := make([]row, 0, len(r.Packages))
	rank := map[string]int{}
	for i, c := range counts {
		rank[c.Type] = i
	}
	for id, p := range r.Packages {
		rows = append(rows, row{p.Name, p.Version, Type(p), location(r.Environments[id])})
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(rank[a.typ], rank[b.typ]), cmp.Compare(a.name, b.name),
			cmp.Compare(a.version, b.version), cmp.Compare(a.location, b.location))
	})
	shown := rows
	if top > 0 && len(rows) > top {
		shown = rows[:top]
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tTYPE\tLOCATION")
	for _, r := range shown {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(r.name), clean(r.version), r.typ, clean(r.location))
	}
	if len(shown) < len(rows) {
		fmt.Fprintf(tw, "... and %d more (--top 0 lists all, --format json gives the report)\n", len(rows)-len(shown))
	}
	return tw.Flush()
}

// location is where a package was found: its first package database or
// manifest, and how many other places hold it.
func location(envs []*report.Environment) string {
	var paths []string
	for _, e := range envs {
		if e.PackageDB != "" && !slices.Contains(paths, e.PackageDB) {
			paths = append(paths, e.PackageDB)
		}
	}
	slices.Sort(paths)
	switch len(paths) {
	case 0:
		return ""
	case 1:
		return paths[0]
	}
	return fmt.Sprintf("%s (+%d more)", paths[0], len(paths)-1)
}

// clean keeps a field from an image on one table cell: control characters
// (tabs, newlines, terminal escapes) become spaces.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

func sortedValues[T any](m map[string]T, key func(T) string) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return out
}
