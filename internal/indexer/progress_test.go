package indexer_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/enrich"
	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// slowEnricher takes a while and finds no gap.
type slowEnricher struct{ d time.Duration }

func (slowEnricher) Info() scanner.Info {
	return scanner.Info{Name: "slow-enricher", Version: "1", Kind: "enricher"}
}
func (e slowEnricher) Enrich(context.Context, *report.Report) ([]enrich.Gap, error) {
	time.Sleep(e.d)
	return nil, nil
}

// TestProgressAfter: with Config.ProgressAfter, a short run stores only
// CheckManifest (with the manifest, in one transaction on Postgres) of its
// intermediate states; a long one stores the state it is in once the delay
// passes, before its final report; a lost lease still writes nothing.
func TestProgressAfter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		after    time.Duration
		enricher time.Duration
		stored   report.State // the stored report's state before the run
		token    int64
		want     []string // the WriteReport and FinishManifest calls
		wantErr  error
	}{
		{name: "short run", after: time.Hour, stored: report.StateCheckManifest, token: 1,
			want: []string{"WriteReport CheckManifest", "FinishManifest IndexFinished"}},
		{name: "short run with no report", after: time.Hour, token: 1,
			want: []string{"WriteReport CheckManifest", "FinishManifest IndexFinished"}},
		{name: "long run", after: time.Millisecond, enricher: 200 * time.Millisecond, stored: report.StateCheckManifest, token: 1,
			want: []string{"WriteReport IndexManifest", "FinishManifest IndexFinished"}},
		{name: "lost lease", after: time.Hour, stored: report.StateCheckManifest, token: 0, wantErr: leases.ErrLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := indexer.Config{ProgressAfter: tc.after}
			if tc.enricher > 0 {
				cfg.Enrichers = []enrich.Enricher{slowEnricher{tc.enricher}}
			}
			fx := newFixture(t, cfg)
			if tc.stored != "" {
				fx.st.reports[fx.m.Hash] = report.NewReport(fx.m.Hash, tc.stored)
			}
			f := fx.fence()
			f.Token = tc.token
			r, err := fx.ix.Index(context.Background(), f, fx.m, indexer.Run{Attempt: 1})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || r != nil {
					t.Fatalf("got %v, %v; want an error wrapping %v", r, err, tc.wantErr)
				}
				if got := fx.st.reports[fx.m.Hash].State; got != tc.stored {
					t.Errorf("stored report %s after a lost lease, want %s", got, tc.stored)
				}
				return
			}
			if err != nil || r.State != report.StateIndexFinished {
				t.Fatalf("got %v, %v", r, err)
			}
			var w []string
			for _, c := range fx.writes() {
				if strings.HasPrefix(c, "WriteReport") || strings.HasPrefix(c, "FinishManifest") {
					w = append(w, c)
				}
			}
			if len(w) < len(tc.want) || !slices.Equal(w[len(w)-len(tc.want):], tc.want) ||
				(tc.enricher == 0 && len(w) != len(tc.want)) {
				t.Errorf("report writes %v, want %v", w, tc.want)
			}
			if got := fx.st.reports[fx.m.Hash]; got.State != report.StateIndexFinished {
				t.Errorf("stored report %s, want the final one", got.State)
			}
		})
	}
}
