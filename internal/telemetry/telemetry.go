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
	otel.SetTextMapPropagator(Propagator())
	return setup(ctx, service, log, signal[sdktrace.SpanExporter, trace.TracerProvider]{
		what:        "tracing",
		env:         "OTEL_TRACES_EXPORTER",
		noop:        noop.NewTracerProvider(),
		newExporter: func(ctx context.Context) (sdktrace.SpanExporter, error) { return autoexport.NewSpanExporter(ctx) },
		newProvider: func(exp sdktrace.SpanExporter, res *resource.Resource) (trace.TracerProvider, func(context.Context) error) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
			return tp, tp.Shutdown
		},
		install: otel.SetTracerProvider,
	})
}

// signal is how one kind of telemetry (traces, metrics) is set up: E is its
// exporter, P its provider.
type signal[E, P any] struct {
	what        string // "tracing", "metrics": the errors' prefix
	env         string // the variable that chooses the exporter
	noop        P      // the provider when env is unset or "none"
	newExporter func(context.Context) (E, error)
	newProvider func(E, *resource.Resource) (P, func(context.Context) error)
	install     func(P) // makes the provider the global one
}

// setup installs the provider s.env chooses, the no-op one when it is unset
// or "none", as the global one and returns it with its shutdown function.
// OpenTelemetry's own failures go to log (see LogErrors).
func setup[E, P any](ctx context.Context, service string, log *slog.Logger, s signal[E, P]) (P, func(context.Context) error, error) {
	LogErrors(log)
	if e := os.Getenv(s.env); e == "" || e == "none" {
		s.install(s.noop)
		return s.noop, func(context.Context) error { return nil }, nil
	}
	var zero P
	exp, err := s.newExporter(ctx)
	if err != nil {
		return zero, nil, fmt.Errorf("%s: exporter from %s: %w", s.what, s.env, err)
	}
	res, err := serviceResource(ctx, service)
	if err != nil {
		return zero, nil, fmt.Errorf("%s: resource: %w", s.what, err)
	}
	p, shutdown := s.newProvider(exp, res)
	s.install(p)
	return p, shutdown, nil
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
