package affected_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stevedore-dev/stevedore/internal/indexer/coalesce"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/postgres/leases"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/all"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// image is a one-layer image made of fixture files: layer path -> fixture
// name (under the fixtures corpus). Executable says which paths get mode
// 0755 (Go binaries are found by their executable bit).
type image struct {
	files      map[string]string
	executable map[string]bool
	// built are files made by the test (layer path -> contents).
	built map[string][]byte
}

// digestOf makes a distinct, valid digest from a seed.
func digestOf(seed string) report.Digest {
	return report.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(seed))))
}

// scanImage runs the default scanners on the image's files, as the layer
// reader hands them out, and coalesces the result into the manifest's
// report, as a worker does.
func scanImage(t testing.TB, m report.Digest, img image) *report.Report {
	t.Helper()
	ctx := context.Background()
	layer := coalesce.Layer{Digest: digestOf("layer of " + string(m))}
	contents := map[string][]byte{}
	for p, fx := range img.files {
		body, err := os.ReadFile(fixtures.Path(t, fx))
		if err != nil {
			t.Fatal(err)
		}
		contents[p] = body
	}
	for p, body := range img.built {
		contents[p] = body
	}
	for _, s := range all.Default() {
		var files []scanner.File
		for p, body := range contents {
			mode := fs.FileMode(0o644)
			if img.executable[p] {
				mode = 0o755
			}
			want := s.Match(p)
			if fm, ok := s.(scanner.FileMatcher); ok && !want && fm.MatchFile(p, mode, int64(len(body))) {
				head := body[:min(len(body), scanner.HeadSize)]
				keep, marker := fm.MatchHead(p, head)
				want = keep || (marker != nil && containsBytes(body, marker))
			}
			if want {
				files = append(files, scannertest.File(p, body))
			}
		}
		res, err := s.Scan(ctx, files)
		if err != nil {
			t.Fatalf("scanner %s: %v", s.Info().Name, err)
		}
		if res == nil {
			continue
		}
		if s.Info().Kind == scanner.KindPackage {
			for _, f := range files {
				layer.PackageDBs = append(layer.PackageDBs, f.Path())
			}
		}
		layer.Packages = append(layer.Packages, res.Packages...)
		layer.Distributions = append(layer.Distributions, res.Distributions...)
		layer.Repositories = append(layer.Repositories, res.Repositories...)
		layer.OwnedFiles = append(layer.OwnedFiles, res.OwnedFiles...)
	}
	r := coalesce.Coalesce(m, []coalesce.Layer{layer})
	r.State = report.StateIndexFinished
	r.Success = true
	return r
}

func containsBytes(b, sub []byte) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return true
		}
	}
	return false
}

// storeReport writes r as its manifest's stored report, under a lease, the
// way a worker finishes a manifest.
func storeReport(t testing.TB, pool *pgxpool.Pool, st *postgres.Store, r *report.Report) {
	t.Helper()
	ctx := context.Background()
	l, err := leases.New(pool, "affected-test", leases.WithTTL(time.Minute)).Acquire(ctx, string(r.Hash))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if err := st.FinishManifest(ctx, postgres.Fence{Digest: r.Hash, Token: l.Fence}, r, nil, nil); err != nil {
		t.Fatal(err)
	}
}
