package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/telemetry"
	"github.com/stevedore-dev/stevedore/internal/testing/closedport"
	"github.com/stevedore-dev/stevedore/internal/testing/logbuf"
)

// TestFailuresGoToSlog: OpenTelemetry's failures (a trace exporter whose
// collector is down; a malformed OTEL_* setting the SDK reports through its
// logger) reach the process's slog logger as structured records, and
// nothing is printed through the standard library's log package (they
// were bare lines on stderr).
//
// The test swaps the standard library's default logger to catch those
// lines, so it does not run in parallel.
func TestFailuresGoToSlog(t *testing.T) {
	var stdlog bytes.Buffer
	oldOut, oldFlags := log.Writer(), log.Flags()
	log.SetOutput(&stdlog)
	t.Cleanup(func() { log.SetOutput(oldOut); log.SetFlags(oldFlags) })
	t.Cleanup(func() { telemetry.LogErrors(slog.New(slog.NewTextHandler(os.Stderr, nil))) })

	for _, tc := range []struct {
		name string
		env  map[string]string
		run  func(t *testing.T, logger *slog.Logger)
		want string // in the error attribute of a record
	}{
		{"trace exporter cannot reach its collector", map[string]string{
			"OTEL_TRACES_EXPORTER":           "otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL":    "http/protobuf",
			"OTEL_EXPORTER_OTLP_ENDPOINT":    "http://" + closedport.Addr(t),
			"OTEL_EXPORTER_OTLP_TIMEOUT":     "300",
			"OTEL_EXPORTER_OTLP_INSECURE":    "true",
			"OTEL_METRICS_EXPORTER":          "",
			"OTEL_METRIC_EXPORT_INTERVAL":    "",
			"OTEL_EXPORTER_OTLP_COMPRESSION": "",
		}, func(t *testing.T, logger *slog.Logger) {
			tp, shutdown, err := telemetry.Setup(context.Background(), "test", logger)
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(context.Background(), "work")
			span.End()
			// Shutdown exports the last batch; its failure is handled
			// (and the error is returned as well).
			shutdown(context.Background())
		}, "traces export"},
		{"malformed metric setting", map[string]string{
			"OTEL_TRACES_EXPORTER":        "",
			"OTEL_METRICS_EXPORTER":       "otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + closedport.Addr(t),
			"OTEL_EXPORTER_OTLP_TIMEOUT":  "300",
			"OTEL_METRIC_EXPORT_INTERVAL": "soon",
		}, func(t *testing.T, logger *slog.Logger) {
			_, shutdown, err := telemetry.SetupMetrics(context.Background(), "test", logger)
			if err != nil {
				t.Fatal(err)
			}
			shutdown(context.Background())
		}, "soon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			stdlog.Reset()
			var out logbuf.Buffer
			tc.run(t, slog.New(slog.NewJSONHandler(&out, nil)))
			if stdlog.Len() != 0 {
				t.Errorf("printed through the log package: %q", stdlog.String())
			}
			found := false
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("not a JSON record: %q", line)
				}
				if rec["level"] == "ERROR" && rec["component"] == "opentelemetry" && strings.Contains(fmt.Sprint(rec["error"], rec["msg"], rec), tc.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no ERROR record about %q from OpenTelemetry in:\n%s", tc.want, out.String())
			}
		})
	}
}
