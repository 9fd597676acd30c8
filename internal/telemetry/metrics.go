package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// SetupMetrics installs the meter provider chosen by OTEL_METRICS_EXPORTER
// as the global one and returns it with a shutdown function that flushes
// the last readings. Unset (or "none"): nothing is recorded. "otlp" (with
// OTEL_EXPORTER_OTLP_ENDPOINT), "prometheus" (a scrape endpoint on
// OTEL_EXPORTER_PROMETHEUS_HOST:OTEL_EXPORTER_PROMETHEUS_PORT, default
// localhost:9464) or "console" export them, as autoexport reads them.
// service names the process when OTEL_SERVICE_NAME is unset.
// OpenTelemetry's own failures go to log (see LogErrors; nil:
// slog.Default()).
func SetupMetrics(ctx context.Context, service string, log *slog.Logger) (metric.MeterProvider, func(context.Context) error, error) {
	return setup(ctx, service, log, signal[sdkmetric.Reader, metric.MeterProvider]{
		what:        "metrics",
		env:         "OTEL_METRICS_EXPORTER",
		noop:        noop.NewMeterProvider(),
		newExporter: func(ctx context.Context) (sdkmetric.Reader, error) { return autoexport.NewMetricReader(ctx) },
		newProvider: func(reader sdkmetric.Reader, res *resource.Resource) (metric.MeterProvider, func(context.Context) error) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
			return mp, mp.Shutdown
		},
		install: otel.SetMeterProvider,
	})
}
