// Package scanlayer reads a layer with scanners and gathers what they find
// as the coalescer takes it, for tests and benchmarks that coalesce
// reports without a store (the indexer itself stores each scanner's
// results and coalesces what it loads back).
package scanlayer

import (
	"bytes"
	"context"
	"fmt"

	"github.com/stevedore-dev/stevedore/internal/indexer/coalesce"
	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// Read reads blob, the layer d, through the real layer reader (spooling
// into tempDir) and scans it with ss: the layer's whiteouts and opaque
// directories, the files of every package scanner as package databases,
// and the packages, distributions, repositories and owned files each
// scanner found.
func Read(ctx context.Context, blob []byte, d report.Digest, ss []scanner.Scanner, tempDir string) (coalesce.Layer, error) {
	contents, err := layer.Read(ctx, bytes.NewReader(blob), d, ss, layer.Options{TempDir: tempDir})
	if err != nil {
		return coalesce.Layer{}, fmt.Errorf("read layer %s: %w", d, err)
	}
	defer contents.Close()
	l := coalesce.Layer{Digest: d, Whiteouts: contents.Whiteouts, OpaqueDirs: contents.OpaqueDirs}
	for k, s := range ss {
		res, err := s.Scan(ctx, contents.Files[k])
		if err != nil {
			return coalesce.Layer{}, fmt.Errorf("layer %s: scanner %s: %w", d, s.Info().Name, err)
		}
		if s.Info().Kind == scanner.KindPackage {
			for _, f := range contents.Files[k] {
				l.PackageDBs = append(l.PackageDBs, f.Path())
			}
		}
		if res == nil {
			continue
		}
		l.Packages = append(l.Packages, res.Packages...)
		l.Distributions = append(l.Distributions, res.Distributions...)
		l.Repositories = append(l.Repositories, res.Repositories...)
		l.OwnedFiles = append(l.OwnedFiles, res.OwnedFiles...)
	}
	return l, nil
}
