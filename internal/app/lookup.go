package app

import (
	"context"
	"fmt"

	"github.com/stevedore-dev/stevedore/internal/intake"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/report"
)

// Found is a report Lookup found current: the platform image it is of.
type Found struct {
	Ref    string
	Image  report.Image
	Report *report.Report
}

// Lookup returns the stored reports of every platform manifest of refs
// (platform: "" for all, or the one asked for) when each is current for
// cfg's scanners, without starting a node: no queue, no workers, only
// Postgres (cfg.Pool, or a pool of its own whose schema is migrated as
// Start does) and the registries (to
// resolve the references, under cfg's allowlist). ok is false when one is
// not stored or not current: the caller then starts a node to index it. The
// errors may name the references and manifests: the caller decides what to
// show.
func Lookup(ctx context.Context, cfg Config, refs []string, platform string) (found []Found, ok bool, err error) {
	cfg = prepare(cfg)
	pool := cfg.Pool
	if pool == nil {
		if pool, err = postgres.Connect(ctx, cfg.DatabaseURL); err != nil {
			return nil, false, err
		}
		defer pool.Close()
	}
	var res intake.Resolver = cfg.Resolver
	if res == nil {
		res = resolve.New(resolve.WithClient(registry.New(cfg.Registries, registry.WithLogger(cfg.Logger), registry.WithMeterProvider(cfg.MeterProvider))))
	}
	d := intake.New(postgres.New(pool), nil, res, State(cfg.Scanners), cfg.Logger, intake.WithAllowlist(cfg.Registries.Allowlist))
	for _, ref := range refs {
		imgs, reports, ok, err := d.Lookup(ctx, ref, platform)
		if err != nil {
			return nil, false, fmt.Errorf("look up %s: %w", ref, err)
		}
		if !ok {
			return nil, false, nil
		}
		for i, img := range imgs {
			found = append(found, Found{Ref: ref, Image: img, Report: reports[i]})
		}
	}
	return found, true, nil
}
