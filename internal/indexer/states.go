package indexer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stevedore-dev/stevedore/internal/indexer/coalesce"
	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
)

// The states of one run, in order; each stores the report of the state it
// enters (transition) before its work, under the run's fence, or, with
// Config.ProgressAfter, once the run has lasted that long (see progress).

// index runs m through the states and returns the final report.
func (ix *Indexer) index(ctx context.Context, f postgres.Fence, m *report.Manifest, attempt int, run Run) (*report.Report, error) {
	p := ix.newProgress(ctx, f, m.Hash, attempt)
	defer p.stop()
	if r, err := ix.checkManifest(ctx, p, m, run.Force); r != nil || err != nil {
		return r, err
	}
	digests, missing, err := ix.fetchLayers(ctx, p, m)
	if err != nil {
		return nil, err
	}
	// ScanLayers: one streaming pass over each needed layer.
	if err := p.enter(ctx, report.StateScanLayers, false); err != nil {
		return nil, err
	}
	if err := ix.scanLayers(ctx, f, m, missing); err != nil {
		return nil, err
	}
	rep, err := ix.coalesce(ctx, p, m.Hash, digests)
	if err != nil {
		return nil, err
	}
	return ix.indexManifest(ctx, p, rep, run.Job)
}

// checkManifest ends the run early with the stored report when it is
// current (finished under this scanner set, unless force); otherwise it
// enters CheckManifest and records the manifest. A nil report and error:
// go on.
//
// CheckManifest is stored at once, with the manifest (one transaction).
func (ix *Indexer) checkManifest(ctx context.Context, p *progress, m *report.Manifest, force bool) (*report.Report, error) {
	if r, err := ix.cfg.Store.Report(ctx, m.Hash); err == nil && !force && r.State == report.StateIndexFinished && r.ScannerState == ix.state {
		ix.log.DebugContext(ctx, "report is current", "digest", m.Hash)
		return r, nil
	} else if err != nil && !errors.Is(err, postgres.ErrNotFound) {
		return nil, err
	}
	if ix.cfg.ProgressAfter <= 0 {
		if err := p.enter(ctx, report.StateCheckManifest, true); err != nil {
			return nil, err
		}
		return nil, ix.cfg.Store.PutManifestReport(ctx, p.f, m, nil)
	}
	// A short run so far: the state and the manifest in one transaction.
	if err := p.enter(ctx, report.StateCheckManifest, false); err != nil {
		return nil, err
	}
	return nil, ix.cfg.Store.PutManifestReport(ctx, p.f, m, ix.report(m.Hash, report.StateCheckManifest, p.attempt))
}

// fetchLayers enters FetchLayers and finds what is not stored yet: it
// returns the manifest's layer digests, in order, and the scanners (by
// position) each layer lacks results of.
func (ix *Indexer) fetchLayers(ctx context.Context, p *progress, m *report.Manifest) ([]report.Digest, map[report.Digest][]int, error) {
	f := p.f
	if err := p.enter(ctx, report.StateFetchLayers, false); err != nil {
		return nil, nil, err
	}
	digests := make([]report.Digest, len(m.Layers))
	for i, l := range m.Layers {
		digests[i] = l.Hash
	}
	missing, carry, err := ix.cfg.Store.LayerNeeds(ctx, digests, ix.ids)
	if err != nil {
		return nil, nil, err
	}
	if len(missing) > 0 && carry {
		// A new version of a scanner that matches the same files as an
		// old one needs no layer the old one found nothing to read in.
		n, err := ix.cfg.Store.CarryOverEmpty(ctx, f, digests, ix.ids)
		if err != nil {
			return nil, nil, err
		}
		if n > 0 {
			if missing, err = ix.cfg.Store.MissingScans(ctx, digests, ix.ids); err != nil {
				return nil, nil, err
			}
		}
	}
	ix.countSkipped(ctx, digests, missing)
	return digests, missing, nil
}

// coalesce enters Coalesce and builds the report of manifest d from the
// stored results of its layers (digests, in order). A report over
// MaxReportPackages is refused without loading its packages.
func (ix *Indexer) coalesce(ctx context.Context, p *progress, d report.Digest, digests []report.Digest) (*report.Report, error) {
	if err := p.enter(ctx, report.StateCoalesce, false); err != nil {
		return nil, err
	}
	// Counted as they are loaded: a report over the limit is never built.
	stored, n, err := ix.cfg.Store.LoadLayerResultsWithin(ctx, digests, ix.ids, int64(ix.cfg.MaxReportPackages))
	if err != nil {
		return nil, err
	}
	if n > int64(ix.cfg.MaxReportPackages) {
		return nil, fmt.Errorf("manifest %s: %w: its layers hold %d packages, more than the limit of %d per report (--report-max-packages)",
			d, layer.ErrLimit, n, ix.cfg.MaxReportPackages)
	}
	cl := make([]coalesce.Layer, len(stored))
	for i, s := range stored {
		cl[i] = coalesce.Layer{
			Digest: s.Digest, Whiteouts: s.Whiteouts, OpaqueDirs: s.OpaqueDirs, PackageDBs: s.PackageDBs,
			Packages: s.Found.Packages, Distributions: s.Found.Distributions, Repositories: s.Found.Repositories,
			OwnedFiles: s.Found.OwnedFiles,
		}
	}
	_, cspan := ix.tracer.Start(ctx, "coalesce")
	rep := coalesce.Coalesce(d, cl)
	cspan.End()
	return rep, nil
}

// indexManifest enters IndexManifest, enriches rep and stores it as the
// final report: IndexFinished, or IndexPartial with its next retry when an
// enricher is waiting for data. job is stored with it, to run again.
func (ix *Indexer) indexManifest(ctx context.Context, p *progress, rep *report.Report, job []byte) (*report.Report, error) {
	f, attempt := p.f, p.attempt
	if err := p.enter(ctx, report.StateIndexManifest, false); err != nil {
		return nil, err
	}
	rep.State = report.StateIndexFinished
	rep.Success = true
	rep.ScannerState = ix.state
	rep.Attempt = attempt
	waiting, err := ix.enrich(ctx, rep)
	if err != nil {
		return nil, err
	}
	if len(waiting) > 0 {
		rep.State = report.StateIndexPartial
		next := time.Now().Add(ix.cfg.Retry.Delay(attempt)).UTC()
		rep.NextRetry = &next
	}
	// No intermediate state is stored after this point.
	if err := p.stop(); err != nil {
		return nil, err
	}
	if err := ix.cfg.Store.FinishManifest(ctx, f, rep, waiting, job); err != nil {
		return nil, err
	}
	return rep, nil
}
