// Package telemetry sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables. With OTEL_TRACES_EXPORTER unset (or "none") nothing
// is exported and tracing costs next to nothing; "otlp" (with
// OTEL_EXPORTER_OTLP_ENDPOINT) or "console" export spans.
package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Setup installs the tracer provider chosen by the environment as the global
// one, with the W3C propagator, and returns it with a shutdown function that
// flushes spans. service names the process when OTEL_SERVICE_NAME is unset.
// OpenTelemetry's own failures (an exporter that cannot export) go to log
// (see LogErrors; nil: slog.Default()).
func Setup(ctx context.Context, service string, log *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	LogErrors(log)
	otel.SetTextMapPropagator(Propagator())
	if e := os.Getenv("OTEL_TRACES_EXPORTER"); e == "" || e == "none" {
		tp := noop.NewTracerProvider()
		otel.SetTracerProvider(tp)
		return tp, func(context.Context) error { return nil }, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: exporter from OTEL_TRACES_EXPORTER: %w", err)
	}
	res, err := serviceResource(ctx, service)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp, tp.Shutdown, nil
}

// serviceResource describes the process to the traces' and metrics'
// exporters. The service name given here is a default: OTEL_SERVICE_NAME
// and OTEL_RESOURCE_ATTRIBUTES, detected after it, override it.
func serviceResource(ctx context.Context, service string) (*resource.Resource, error) {
	return resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv())
}
