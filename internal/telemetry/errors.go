package telemetry

import (
	"log/slog"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
)

// LogErrors routes OpenTelemetry's own failures to log as structured
// records: an exporter that cannot reach its collector, a batch dropped, a
// malformed OTEL_* setting. By default OpenTelemetry prints them as bare
// lines on stderr (through the standard library's log package), outside
// the process's log format.
//
// OpenTelemetry keeps its error handler and its internal logger in
// process-wide variables (otel.SetErrorHandler, otel.SetLogger) and offers
// no other way to receive these errors, so LogErrors sets both, as Setup
// sets the global tracer provider; it holds no state of its own, and the
// last call wins. log nil means slog.Default() at the time of the call.
func LogErrors(log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "opentelemetry")
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Error("OpenTelemetry failure", "error", err)
	}))
	// OpenTelemetry's verbosity levels map to slog levels below Info
	// (V(1), its warnings, is slog level -1), so the logger's handler
	// decides what is shown; errors are always Error.
	otel.SetLogger(logr.FromSlogHandler(log.Handler()))
}
