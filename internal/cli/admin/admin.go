// Package admin implements the operator commands that work on the database
// alone (no queue needed, as in an air-gapped site): importing and showing
// enrichment data, listing partial reports and asking for their retry.
package admin

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
)

// ImportEnrichment loads enrichment data name from a file. Data that does
// not validate is refused with the reason and what was loaded before is
// kept. Partial reports waiting for the data are requeued by the running
// dispatchers' sweep.
func ImportEnrichment(ctx context.Context, es *enrich.Store, name, file string, out io.Writer) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	abs, _ := filepath.Abs(file)
	d, err := es.Load(ctx, name, "file://"+abs, "", "", raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "imported %s: %d entries from %s (%s)\n", d.Name, d.Entries, file, d.Digest)
	return nil
}

// EnrichmentStatus prints what enrichment data is loaded, from where, and how
// old it is.
func EnrichmentStatus(ctx context.Context, es *enrich.Store, out io.Writer) error {
	ds, now, err := es.Status(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATA\tENTRIES\tAGE\tLAST CHECKED\tSOURCE\tLAST ERROR")
	for _, d := range ds {
		if d.Digest == "" {
			fmt.Fprintf(tw, "%s\t-\tnot loaded\t-\t-\t%s\n", d.Name, d.LastError)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s ago\t%s\t%s\n", d.Name, d.Entries, now.Sub(d.LoadedAt).Round(time.Second),
			now.Sub(d.CheckedAt).Round(time.Second), d.Source, d.LastError)
	}
	return tw.Flush()
}

// ListPartial prints the partial reports with their reasons, attempts and
// next retry.
func ListPartial(ctx context.Context, st *postgres.Store, limit int, out io.Writer) error {
	ps, err := st.ListPartial(ctx, limit)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		fmt.Fprintln(out, "no partial reports")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MANIFEST\tATTEMPT\tNEXT RETRY\tREASON")
	for _, p := range ps {
		next := "-"
		if p.RetryRequested {
			next = "requested now"
		} else if p.NextRetry != nil {
			next = p.NextRetry.UTC().Format(time.RFC3339)
		}
		reason := ""
		for i, r := range p.Reasons {
			if i > 0 {
				reason += "; "
			}
			reason += r.Scanner + ": " + r.Reason
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p.Digest, p.Attempt, next, reason)
	}
	return tw.Flush()
}

// RetryPartial asks for partial reports to be retried now.
func RetryPartial(ctx context.Context, st *postgres.Store, digests []string, out io.Writer) error {
	for _, raw := range digests {
		d, err := report.ParseDigest(raw)
		if err != nil {
			return err
		}
		found, err := st.RequestRetry(ctx, d)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%s has no partial report", d)
		}
		fmt.Fprintf(out, "retry requested for %s\n", d)
	}
	return nil
}

// Reindex asks the dispatchers' sweep to index reports again now: the given
// digests, every finished report (all), or those made by a scanner-set
// state other than current (stale).
func Reindex(ctx context.Context, st *postgres.Store, digests []string, all, stale bool, current string, out io.Writer) error {
	if len(digests) == 0 && !all && !stale {
		return fmt.Errorf("reindex: say what: --digest D (repeatable), --all or --stale")
	}
	ds := make([]report.Digest, len(digests))
	for i, raw := range digests {
		d, err := report.ParseDigest(raw)
		if err != nil {
			return fmt.Errorf("--digest: %w", err)
		}
		ds[i] = d
	}
	n, err := st.RequestReindex(ctx, ds, all, stale, current)
	if err != nil {
		return err
	}
	if len(ds) > 0 && n < int64(len(ds)) && !all {
		fmt.Fprintf(out, "%d of the %d digests have a finished report; the others were not marked\n", n, len(ds))
	}
	fmt.Fprintf(out, "%d reports marked for re-index (scanner-set state %s)\n", n, current)
	return nil
}
