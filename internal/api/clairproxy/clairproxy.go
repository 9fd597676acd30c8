// Package clairproxy gives Quay one endpoint for the whole of Clair's API:
// Stevedore serves the indexer's paths itself and passes /matcher/ and
// /notifier/ to a Clair matcher and a Clair notifier, unchanged: method,
// path, query, body and headers (Authorization included, so that Clair checks
// the same pre-shared-key JWT) go through, and the answer comes back as the
// service gave it.
//
// A path whose service is not configured answers 503 with a JSON error
// naming the flag to set; a service that does not answer gives 502 with a
// JSON error.
package clairproxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
)

// Prefixes of the paths passed on.
const (
	MatcherPrefix  = "/matcher/"
	NotifierPrefix = "/notifier/"
)

// ResponseHeaderTimeout bounds the wait for a service's answer: Clair's
// matcher computes a vulnerability report on request, which takes long for
// large images; Quay itself waits up to 600 s.
const ResponseHeaderTimeout = 10 * time.Minute

// Config names the Clair services.
type Config struct {
	// MatcherURL is the Clair matcher's base URL, e.g.
	// http://clair-matcher:6060 (empty: /matcher/ answers 503).
	MatcherURL string
	// NotifierURL is the Clair notifier's base URL (empty: /notifier/
	// answers 503).
	NotifierURL string
}

// ParseURL checks a service's base URL: http or https, a host, no
// credentials, query or fragment. The error names what is wrong.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", raw)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: want an http:// or https:// URL", raw)
	case u.Host == "":
		return nil, fmt.Errorf("%q: no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("%s: credentials do not belong in the URL (Clair authenticates with the request's JWT)", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%q: want a base URL without query or fragment", raw)
	}
	return u, nil
}

// Options are the optional parts of Mount.
type Options struct {
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// TracerProvider traces the proxied requests and propagates the trace
	// to the services (default: the global provider).
	TracerProvider trace.TracerProvider
	// Transport carries the requests (default: a transport with dial and
	// response-header timeouts, traced).
	Transport http.RoundTripper
	// MatcherSetting and NotifierSetting name the settings in errors,
	// e.g. "--clair-matcher-url (env STEVEDORE_CLAIR_MATCHER_URL)"
	// (default: the flags and variables of internal/config).
	MatcherSetting, NotifierSetting string
}

// Mount returns a handler that passes /matcher/ and /notifier/ to the
// configured services and everything else to next.
func Mount(cfg Config, next http.Handler, opts Options) (http.Handler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = otel.GetTracerProvider()
	}
	if opts.MatcherSetting == "" {
		opts.MatcherSetting = "--clair-matcher-url (env STEVEDORE_CLAIR_MATCHER_URL)"
	}
	if opts.NotifierSetting == "" {
		opts.NotifierSetting = "--clair-notifier-url (env STEVEDORE_CLAIR_NOTIFIER_URL)"
	}
	if opts.Transport == nil {
		opts.Transport = otelhttp.NewTransport(&http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: ResponseHeaderTimeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   16,
			ForceAttemptHTTP2:     true,
		}, otelhttp.WithTracerProvider(opts.TracerProvider))
	}
	mux := http.NewServeMux()
	for _, svc := range []struct {
		name, prefix, raw, setting string
	}{
		{"matcher", MatcherPrefix, cfg.MatcherURL, opts.MatcherSetting},
		{"notifier", NotifierPrefix, cfg.NotifierURL, opts.NotifierSetting},
	} {
		h, err := service(svc.name, svc.raw, svc.setting, opts)
		if err != nil {
			return nil, err
		}
		mux.Handle(svc.prefix, otelhttp.NewHandler(h, "clair "+svc.name, otelhttp.WithTracerProvider(opts.TracerProvider)))
	}
	mux.Handle("/", next)
	return mux, nil
}

// service is the handler of one Clair service.
func service(name, raw, setting string, opts Options) (http.Handler, error) {
	if raw == "" {
		msg := fmt.Sprintf("no Clair %s is configured: set %s to pass %s requests to one", name, setting, name)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			apierr.Write(w, http.StatusServiceUnavailable, "not-configured", msg)
		}), nil
	}
	target, err := ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	log := opts.Logger.With("service", "clair "+name, "upstream", target.Redacted())
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The path is kept: target http://m:6060 and
			// /matcher/api/v1/x go to http://m:6060/matcher/api/v1/x.
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: opts.Transport,
		ErrorLog:  slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, r.Context().Err()) && r.Context().Err() != nil {
				// The client went away: nobody reads the answer.
				log.DebugContext(r.Context(), "client gone", "path", r.URL.Path, "error", err)
				w.WriteHeader(499)
				return
			}
			log.WarnContext(r.Context(), "Clair service did not answer", "method", r.Method, "path", r.URL.Path, "error", err)
			apierr.Write(w, http.StatusBadGateway, "bad-gateway", fmt.Sprintf("the Clair %s did not answer: %v (its address is set by %s)", name, err, setting))
		},
	}, nil
}
