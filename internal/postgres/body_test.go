package postgres_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/reportbody"
	"github.com/stevedore-dev/stevedore/report"
)

// A terminal report's answers are stored with it; a later write of the
// report (here: a new run starting) makes them unservable at once, and an
// answer being streamed cannot be finished from the replaced chunks.
func storedAnswersFollowTheReport(t *testing.T, c *conf) {
	ctx, pool, st := c.ctx, c.pool, c.st
	m := manifest("b", "1")
	l, err := leases.New(pool, "w", leases.WithTTL(time.Hour)).Acquire(ctx, string(m.Hash))
	if err != nil {
		t.Fatal(err)
	}
	f := postgres.Fence{Digest: m.Hash, Token: l.Fence}
	r := report.NewReport(m.Hash, report.StateIndexFinished)
	r.ScannerState = "s1"
	r.Packages["1"] = &report.Package{ID: "1", Name: "musl", Version: "1.2", Kind: report.KindBinary}
	if err := st.FinishManifest(ctx, f, r, nil, nil); err != nil {
		t.Fatal(err)
	}
	stored, err := st.Report(ctx, m.Hash)
	if err != nil {
		t.Fatal(err)
	}
	for _, view := range []string{reportbody.ViewClair, reportbody.ViewNative} {
		// Stored compressed: the JSON served gzip compressed.
		want, err := new(reportbody.Compressor).EncodeStored(stored, view)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := reportbody.Encode(stored, view)
		if err != nil {
			t.Fatal(err)
		}
		b, err := st.OpenBody(ctx, m.Hash, []string{view}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if b.ETag != want.ETag || !bytes.Equal(b.First, want.Data) || b.Size != int64(len(want.Data)) || b.Chunks != 1 ||
			b.State != report.StateIndexFinished || b.ScannerState != "s1" ||
			b.Encoding != reportbody.EncodingGzip || b.IdentitySize != int64(len(plain.Data)) || want.ETag != plain.ETag {
			t.Fatalf("%s: stored %+v, want ETag %s and %d bytes", view, b, want.ETag, len(want.Data))
		}
		nm, err := st.OpenBody(ctx, m.Hash, []string{view}, []string{`"x"`, want.ETag}, false)
		if err != nil || !nm.NotModified || nm.First != nil {
			t.Fatalf("%s with its ETag: %+v %v, want NotModified and no chunk", view, nm, err)
		}
	}
	b, err := st.OpenBody(ctx, m.Hash, []string{reportbody.ViewClair}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WriteReport(ctx, f, report.NewReport(m.Hash, report.StateScanLayers)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenBody(ctx, m.Hash, []string{reportbody.ViewClair}, nil, false); !errors.Is(err, postgres.ErrNotFound) {
		t.Fatalf("stored answer after the report was written again: %v, want ErrNotFound", err)
	}
	if _, err := st.BodyChunk(ctx, b.ID, 0); !errors.Is(err, postgres.ErrNotFound) {
		t.Fatalf("chunk of a replaced answer: %v, want ErrNotFound", err)
	}
}
