package config_test

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/api"
	"github.com/stevedore-dev/stevedore/internal/config"
	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/internal/layer"
)

func TestLimits(t *testing.T) {
	worker := config.Roles{Worker: true}
	base := []string{"--database-url=postgres://x", "--nats-url=nats://y"}
	envs := []string{"STEVEDORE_LAYER_MAX_SPOOL", "STEVEDORE_PROCESS_MAX_SPOOL", "STEVEDORE_LAYER_MAX_UNCOMPRESSED", "STEVEDORE_SPOOL_DIR", "STEVEDORE_LAYER_MAX_PACKAGES", "STEVEDORE_REPORT_MAX_PACKAGES"}
	dir := t.TempDir()
	for _, tc := range []struct {
		name                   string
		env                    map[string]string
		args                   []string
		spool, process, uncomp int64
		layerPkgs, reportPkgs  int
		want                   []string // substrings of the error; none: valid
	}{
		{name: "defaults", spool: layer.DefaultMaxSpool, process: layer.DefaultMaxProcessSpool, uncomp: layer.DefaultMaxUncompressed,
			layerPkgs: indexer.DefaultMaxLayerPackages, reportPkgs: indexer.DefaultMaxReportPackages},
		{name: "package caps", args: []string{"--layer-max-packages=5000"}, env: map[string]string{"STEVEDORE_REPORT_MAX_PACKAGES": "7000"},
			spool: layer.DefaultMaxSpool, process: layer.DefaultMaxProcessSpool, uncomp: layer.DefaultMaxUncompressed, layerPkgs: 5000, reportPkgs: 7000},
		{name: "bad package caps", args: []string{"--layer-max-packages=0", "--report-max-packages=-1"},
			want: []string{"--layer-max-packages: 0: want 1 to 10000000", "--report-max-packages: -1"}},
		{name: "flags", args: []string{"--layer-max-spool=64MiB", "--process-max-spool=1GiB", "--layer-max-uncompressed=2GiB", "--spool-dir=" + dir},
			spool: 64 << 20, process: 1 << 30, uncomp: 2 << 30, layerPkgs: indexer.DefaultMaxLayerPackages, reportPkgs: indexer.DefaultMaxReportPackages},
		{name: "environment", env: map[string]string{"STEVEDORE_LAYER_MAX_SPOOL": "100MiB", "STEVEDORE_PROCESS_MAX_SPOOL": "200MiB", "STEVEDORE_LAYER_MAX_UNCOMPRESSED": "3GiB"},
			spool: 100 << 20, process: 200 << 20, uncomp: 3 << 30, layerPkgs: indexer.DefaultMaxLayerPackages, reportPkgs: indexer.DefaultMaxReportPackages},
		{name: "malformed environment", env: map[string]string{"STEVEDORE_LAYER_MAX_SPOOL": "lots"}, want: []string{`STEVEDORE_LAYER_MAX_SPOOL="lots"`}},
		{name: "too small", args: []string{"--layer-max-spool=10", "--layer-max-uncompressed=1KiB"},
			want: []string{"--layer-max-spool: 10: want at least 1MiB", "--layer-max-uncompressed: 1024: want at least 1MiB"}},
		{name: "process below layer", args: []string{"--layer-max-spool=2GiB", "--process-max-spool=1GiB"},
			want: []string{"--process-max-spool: 1073741824: want at least --layer-max-spool (2147483648)"}},
		{name: "spool dir missing", args: []string{"--spool-dir=" + dir + "/absent"}, want: []string{"--spool-dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range envs {
				t.Setenv(k, tc.env[k])
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o := config.Register(fs, worker)
			if err := fs.Parse(append(append([]string(nil), base...), tc.args...)); err != nil {
				t.Fatal(err)
			}
			err := o.Validate(worker)
			if len(tc.want) > 0 {
				if err == nil {
					t.Fatalf("valid, want errors %q", tc.want)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lo := o.LayerOptions
			if lo.MaxSpool != tc.spool || lo.ProcessSpool == nil || lo.ProcessSpool.Max() != tc.process || lo.MaxUncompressed != tc.uncomp {
				t.Fatalf("layer options: spool %d, process %v, uncompressed %d; want %d, %d, %d", lo.MaxSpool, lo.ProcessSpool, lo.MaxUncompressed, tc.spool, tc.process, tc.uncomp)
			}
			if o.MaxLayerPackages != tc.layerPkgs || o.MaxReportPackages != tc.reportPkgs {
				t.Fatalf("package caps: layer %d, report %d; want %d, %d", o.MaxLayerPackages, o.MaxReportPackages, tc.layerPkgs, tc.reportPkgs)
			}
		})
	}
}

func TestAnswerMaxBytes(t *testing.T) {
	roles := config.Roles{Dispatcher: true, EmbeddedNATS: true}
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want int64
		err  string
	}{
		{name: "default", want: api.DefaultAnswerBytes},
		{name: "flag", args: []string{"--answer-max-bytes=16MiB"}, want: 16 << 20},
		{name: "environment", env: "1GiB", want: 1 << 30},
		{name: "below one chunk", args: []string{"--answer-max-bytes=1KiB"}, err: "--answer-max-bytes: 1024: want at least 256KiB"},
		{name: "malformed environment", env: "much", err: `STEVEDORE_ANSWER_MAX_BYTES="much"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STEVEDORE_ANSWER_MAX_BYTES", tc.env)
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o := config.Register(fs, roles)
			if err := fs.Parse(append([]string{"--database-url=postgres://x"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			err := o.Validate(roles)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err == "" && o.AnswerBytes != tc.want:
				t.Fatalf("AnswerBytes %d, want %d", o.AnswerBytes, tc.want)
			}
		})
	}
}
