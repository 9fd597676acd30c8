package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
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
	LogErrors(log)
	if e := os.Getenv("OTEL_METRICS_EXPORTER"); e == "" || e == "none" {
		mp := noop.NewMeterProvider()
		otel.SetMeterProvider(mp)
		return mp, func(context.Context) error { return nil }, nil
	}
	reader, err := autoexport.NewMetricReader(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: exporter from OTEL_METRICS_EXPORTER: %w", err)
	}
	res, err := serviceResource(ctx, service)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: resource: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
	otel.SetMeterProvider(mp)
	return mp, mp.Shutdown, nil
}
