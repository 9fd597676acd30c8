package config

import (
	"flag"
	"fmt"
	"os"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/postgres"
)

// limitFlags holds the raw bounds of the worker role's layer reading until
// Validate puts them into app.Config's LayerOptions.
type limitFlags struct {
	layerSpool, processSpool, uncompressed byteSize
	// answerBytes bounds the report answers in memory (dispatcher role).
	answerBytes byteSize
}

// registerLimits defines the bounds on what one layer or report may cost
// (worker role): disk for spooled files, per layer and per process,
// decompressed size, packages per layer and per report.
func (o *Options) registerLimits(fs *flag.FlagSet, roles Roles) {
	l := &o.lim
	if roles.Dispatcher {
		o.sizeFlag(fs, &l.answerBytes, "answer-max-bytes", "STEVEDORE_ANSWER_MAX_BYTES", app.DefaultAnswerBytes,
			"bytes of report answers the API holds in memory at once: a stored report streamed weighs one 256KiB chunk at most, one encoded for its request its size; a request waits for room")
	}
	if !roles.Worker {
		return
	}
	o.sizeFlag(fs, &l.layerSpool, "layer-max-spool", "STEVEDORE_LAYER_MAX_SPOOL", layer.DefaultMaxSpool,
		"disk one layer's read may use for the files scanners asked for that do not stay in memory; past it the report fails with the reason")
	o.sizeFlag(fs, &l.processSpool, "process-max-spool", "STEVEDORE_PROCESS_MAX_SPOOL", layer.DefaultMaxProcessSpool,
		"disk all the layers read at once by this process may use for spooled files; a layer that does not fit is retried later")
	o.sizeFlag(fs, &l.uncompressed, "layer-max-uncompressed", "STEVEDORE_LAYER_MAX_UNCOMPRESSED", layer.DefaultMaxUncompressed,
		"largest decompressed size of one layer; past it the report fails with the reason")
	fs.IntVar(&o.MaxLayerPackages, "layer-max-packages", o.envInt("STEVEDORE_LAYER_MAX_PACKAGES", indexer.DefaultMaxLayerPackages),
		"packages one scanner may find in one layer, and files it may be given; past it the report fails with the reason (env STEVEDORE_LAYER_MAX_PACKAGES)")
	fs.IntVar(&o.MaxReportPackages, "report-max-packages", o.envInt("STEVEDORE_REPORT_MAX_PACKAGES", indexer.DefaultMaxReportPackages),
		"packages of one report (all its layers); past it the report fails with the reason (env STEVEDORE_REPORT_MAX_PACKAGES)")
	fs.StringVar(&o.LayerOptions.TempDir, "spool-dir", os.Getenv("STEVEDORE_SPOOL_DIR"), "directory of the spooled files (env STEVEDORE_SPOOL_DIR; empty: the system's temporary directory)")
}

// sizeFlag defines a byte-size flag with an environment default.
func (o *Options) sizeFlag(fs *flag.FlagSet, v *byteSize, name, env string, def int64, help string) {
	*v = byteSize(def)
	if s := os.Getenv(env); s != "" {
		if err := v.Set(s); err != nil {
			o.envErrs = append(o.envErrs, fmt.Errorf("environment %s=%q: %w", env, s, err))
		}
	}
	fs.Var(v, name, fmt.Sprintf("%s; in bytes or with a unit (500MiB, 10GiB) (env %s; default %s)", help, env, formatSize(def)))
}

// validateLimits checks the bounds and fills app.Config's LayerOptions.
func (o *Options) validateLimits(roles Roles) []error {
	var errs []error
	l := &o.lim
	if roles.Dispatcher {
		if l.answerBytes < postgres.BodyChunkSize {
			errs = append(errs, fmt.Errorf("--answer-max-bytes: %d: want at least %s (one chunk of a stored answer)", l.answerBytes, formatSize(postgres.BodyChunkSize)))
		}
		o.AnswerBytes = int64(l.answerBytes)
	}
	if !roles.Worker {
		return errs
	}
	if l.layerSpool < 1<<20 {
		errs = append(errs, fmt.Errorf("--layer-max-spool: %d: want at least 1MiB", l.layerSpool))
	}
	if l.processSpool < l.layerSpool {
		errs = append(errs, fmt.Errorf("--process-max-spool: %d: want at least --layer-max-spool (%d)", l.processSpool, l.layerSpool))
	}
	if l.uncompressed < 1<<20 {
		errs = append(errs, fmt.Errorf("--layer-max-uncompressed: %d: want at least 1MiB", l.uncompressed))
	}
	if o.MaxLayerPackages < 1 || o.MaxLayerPackages > 10_000_000 {
		errs = append(errs, fmt.Errorf("--layer-max-packages: %d: want 1 to 10000000", o.MaxLayerPackages))
	}
	if o.MaxReportPackages < 1 || o.MaxReportPackages > 10_000_000 {
		errs = append(errs, fmt.Errorf("--report-max-packages: %d: want 1 to 10000000", o.MaxReportPackages))
	}
	if d := o.LayerOptions.TempDir; d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("--spool-dir %q: not a directory", d))
		}
	}
	o.LayerOptions.MaxSpool = int64(l.layerSpool)
	o.LayerOptions.MaxUncompressed = int64(l.uncompressed)
	o.LayerOptions.ProcessSpool = layer.NewSpoolBudget(int64(l.processSpool))
	return errs
}

// formatSize writes n bytes with the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.n && n%u.n == 0 {
			return fmt.Sprintf("%d%s", n/u.n, u.suffix)
		}
	}
	return fmt.Sprintf("%d", n)
}
