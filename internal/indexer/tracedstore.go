package indexer

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// tracedStore gives each call to the Store a span ("store.<method>"), so
// that a run's trace shows where its time goes between the layers.
type tracedStore struct {
	s      Store
	tracer trace.Tracer
}

// end ends span, recording err.
func end(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func (t tracedStore) RegisterScanners(ctx context.Context, infos []scanner.Info) (ids []int64, err error) {
	ctx, span := t.tracer.Start(ctx, "store.RegisterScanners")
	defer func() { end(span, err) }()
	return t.s.RegisterScanners(ctx, infos)
}

func (t tracedStore) Report(ctx context.Context, d report.Digest) (r *report.Report, err error) {
	ctx, span := t.tracer.Start(ctx, "store.Report")
	defer func() { end(span, err) }()
	return t.s.Report(ctx, d)
}

func (t tracedStore) WriteReport(ctx context.Context, f postgres.Fence, r *report.Report) (err error) {
	ctx, span := t.tracer.Start(ctx, "store.WriteReport "+string(r.State))
	defer func() { end(span, err) }()
	return t.s.WriteReport(ctx, f, r)
}

func (t tracedStore) PutManifestReport(ctx context.Context, f postgres.Fence, m *report.Manifest, r *report.Report) (err error) {
	name := "store.PutManifest"
	if r != nil {
		name = "store.PutManifestReport " + string(r.State)
	}
	ctx, span := t.tracer.Start(ctx, name)
	defer func() { end(span, err) }()
	return t.s.PutManifestReport(ctx, f, m, r)
}

func (t tracedStore) MissingScans(ctx context.Context, layers []report.Digest, ids []int64) (m map[report.Digest][]int, err error) {
	ctx, span := t.tracer.Start(ctx, "store.MissingScans")
	defer func() { end(span, err) }()
	return t.s.MissingScans(ctx, layers, ids)
}

func (t tracedStore) LayerNeeds(ctx context.Context, layers []report.Digest, ids []int64) (m map[report.Digest][]int, carry bool, err error) {
	ctx, span := t.tracer.Start(ctx, "store.LayerNeeds")
	defer func() { end(span, err) }()
	return t.s.LayerNeeds(ctx, layers, ids)
}

func (t tracedStore) CarryOverEmpty(ctx context.Context, f postgres.Fence, layers []report.Digest, ids []int64) (n int64, err error) {
	ctx, span := t.tracer.Start(ctx, "store.CarryOverEmpty")
	defer func() { end(span, err) }()
	return t.s.CarryOverEmpty(ctx, f, layers, ids)
}

func (t tracedStore) PutLayerResults(ctx context.Context, f postgres.Fence, lr *postgres.LayerResults) (err error) {
	ctx, span := t.tracer.Start(ctx, "store.PutLayerResults")
	defer func() { end(span, err) }()
	return t.s.PutLayerResults(ctx, f, lr)
}

func (t tracedStore) LoadLayerResultsWithin(ctx context.Context, layers []report.Digest, ids []int64, maxPackages int64) (s []*postgres.StoredLayer, n int64, err error) {
	ctx, span := t.tracer.Start(ctx, "store.LoadLayerResultsWithin")
	defer func() { end(span, err) }()
	return t.s.LoadLayerResultsWithin(ctx, layers, ids, maxPackages)
}

func (t tracedStore) FinishManifest(ctx context.Context, f postgres.Fence, r *report.Report, waitingFor []string, job []byte) (err error) {
	ctx, span := t.tracer.Start(ctx, "store.FinishManifest")
	defer func() { end(span, err) }()
	return t.s.FinishManifest(ctx, f, r, waitingFor, job)
}
