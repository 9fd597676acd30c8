// Package clairauth authenticates HTTP requests the way Clair does: a JSON Web
// Token signed with HS256 and a pre-shared key, sent as
// "Authorization: Bearer <token>". Quay signs every request to its Clair
// endpoint so (claims iss "quay" and a 5-minute exp, key from
// SECURITY_SCANNER_V4_PSK), clairctl signs with iss "clairctl", and Clair's
// matcher and notifier sign their calls to the indexer with iss
// "clair-intraservice".
//
// A request passes when its token's signature verifies with the key (HS256
// only: "none" and every other algorithm are refused), its issuer is an
// accepted one, it has an exp claim, and exp, nbf and iat hold with a small
// clock skew. Anything else is answered 401 with WWW-Authenticate: Bearer and
// a JSON error body saying why ({"code": "unauthorized", "message": ...}).
// Some paths (health, metrics, webhooks with secrets of their own) can be
// exempted.
package clairauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stevedore-dev/stevedore/internal/api/apierr"
)

// DefaultClockSkew is the clock skew allowed on exp, nbf and iat, the same
// leeway as Clair's.
const DefaultClockSkew = 15 * time.Second

// MaxClockSkew bounds Config.ClockSkew.
const MaxClockSkew = 5 * time.Minute

// MinKeySize is the key size RFC 7518 asks of HS256 keys; shorter keys are
// accepted (Clair accepts them, and operators reuse their Clair key) with a
// warning at start.
const MinKeySize = 32

// maxTokenSize bounds the token read from the header.
const maxTokenSize = 8 << 10

// DefaultIssuers are the issuers accepted by default: Quay, clairctl and
// Clair's own services (matcher and notifier calling the indexer).
func DefaultIssuers() []string {
	return []string{"quay", "clairctl", "clair-intraservice"}
}

// Config configures the middleware.
type Config struct {
	// Key is the HS256 key (the decoded pre-shared key). Empty: requests
	// are not authenticated.
	Key []byte
	// Issuers are the accepted values of the iss claim (required with a
	// key).
	Issuers []string
	// ClockSkew is allowed on exp, nbf and iat (0 to MaxClockSkew).
	ClockSkew time.Duration
	// Exempt are the paths served without a token; one ending in "/" covers
	// every path below it.
	Exempt []string
	// Now is the clock (default time.Now); for tests.
	Now func() time.Time
}

// Enabled reports whether requests are authenticated.
func (c Config) Enabled() bool { return len(c.Key) > 0 }

// Validate checks the configuration of an enabled middleware.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if len(c.Issuers) == 0 {
		errs = append(errs, errors.New("no accepted issuers"))
	}
	for i, iss := range c.Issuers {
		if strings.TrimSpace(iss) == "" {
			errs = append(errs, fmt.Errorf("issuer %d is empty", i+1))
		}
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		errs = append(errs, fmt.Errorf("clock skew %s: want 0 to %s", c.ClockSkew, MaxClockSkew))
	}
	for _, p := range c.Exempt {
		if !strings.HasPrefix(p, "/") || p == "/" {
			errs = append(errs, fmt.Errorf("exempt path %q: want an absolute path other than /", p))
		}
	}
	return errors.Join(errs...)
}

// DecodeKey decodes a pre-shared key as Clair's auth.psk.key and Quay's
// SECURITY_SCANNER_V4_PSK hold it: standard base64, padded. Surrounding
// white space (a file's final newline) is ignored. The error never shows
// the key.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("the key is empty")
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("the key is not standard base64 (as Quay's SECURITY_SCANNER_V4_PSK): %w", err)
	}
	if len(k) == 0 {
		return nil, errors.New("the key is empty")
	}
	return k, nil
}

// New returns next behind authentication as cfg says. Without a key it
// returns next itself and logs one warning: the API is open.
func New(cfg Config, next http.Handler, log *slog.Logger) (http.Handler, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("authentication: %w", err)
	}
	if !cfg.Enabled() {
		log.Warn("authentication is off: the HTTP API answers every request; set a pre-shared key (STEVEDORE_AUTH_PSK or --auth-psk-file) to require Clair's JWTs")
		return next, nil
	}
	if len(cfg.Key) < MinKeySize {
		log.Warn("the authentication key is short: HS256 wants at least 32 bytes (openssl rand -base64 32)", "bytes", len(cfg.Key))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &authenticator{cfg: cfg, next: next, log: log}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithLeeway(cfg.ClockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(cfg.Now),
	)
	log.Info("authentication on: requests need an HS256 JWT signed with the pre-shared key", "issuers", cfg.Issuers, "clock_skew", cfg.ClockSkew.String(), "exempt", cfg.Exempt)
	return a, nil
}

type authenticator struct {
	cfg    Config
	parser *jwt.Parser
	next   http.Handler
	log    *slog.Logger
}

func (a *authenticator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.exempt(r.URL.Path) {
		a.next.ServeHTTP(w, r)
		return
	}
	tok, ok := bearer(r.Header)
	if !ok {
		a.reject(w, r, "", "no bearer token: send Authorization: Bearer <JWT signed with the pre-shared key>")
		return
	}
	if reason := a.check(tok); reason != "" {
		a.reject(w, r, "invalid_token", reason)
		return
	}
	a.next.ServeHTTP(w, r)
}

// exempt reports whether p is served without a token. A path that is not
// clean (".." or "//" in it) never is: the mux would send it elsewhere.
func (a *authenticator) exempt(p string) bool {
	if p == "" || cleanPath(p) != p {
		return false
	}
	for _, e := range a.cfg.Exempt {
		if p == e || (strings.HasSuffix(e, "/") && strings.HasPrefix(p, e)) {
			return true
		}
	}
	return false
}

func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// bearer finds the first bearer token among the Authorization headers, as
// Clair does; the scheme is case-insensitive (RFC 9110).
func bearer(h http.Header) (string, bool) {
	for _, v := range h.Values("Authorization") {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			if tok = strings.TrimSpace(tok); tok != "" {
				return tok, true
			}
		}
	}
	return "", false
}

// check verifies a token and says what is wrong with it ("" if nothing).
func (a *authenticator) check(raw string) string {
	if len(raw) > maxTokenSize {
		return fmt.Sprintf("token is %d bytes: at most %d", len(raw), maxTokenSize)
	}
	var cl jwt.RegisteredClaims
	tok, err := a.parser.ParseWithClaims(raw, &cl, func(*jwt.Token) (any, error) { return a.cfg.Key, nil })
	if err != nil {
		return a.reason(tok, &cl, err)
	}
	if !slices.Contains(a.cfg.Issuers, cl.Issuer) {
		if cl.Issuer == "" {
			return "token has no iss claim"
		}
		return fmt.Sprintf("issuer %s is not accepted", quote(cl.Issuer))
	}
	return ""
}

// reason turns a parse error into a message that says what is wrong and
// shows nothing secret.
func (a *authenticator) reason(tok *jwt.Token, cl *jwt.RegisteredClaims, err error) string {
	skew := fmt.Sprintf("(clock skew allowed: %s)", a.cfg.ClockSkew)
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token: " + strings.TrimPrefix(err.Error(), jwt.ErrTokenMalformed.Error()+": ")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if alg := algorithm(tok); alg != jwt.SigningMethodHS256.Alg() {
			return fmt.Sprintf("signing algorithm %s is not accepted: want HS256", quote(alg))
		}
		return "signature does not verify with the pre-shared key"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no exp claim: tokens must expire"
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Sprintf("token expired at %s %s", when(cl.ExpiresAt), skew)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return fmt.Sprintf("token is not valid before %s %s", when(cl.NotBefore), skew)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fmt.Sprintf("token is issued in the future, at %s %s", when(cl.IssuedAt), skew)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return "invalid claims: " + strings.TrimPrefix(err.Error(), jwt.ErrTokenInvalidClaims.Error()+": ")
	default:
		return "invalid token: " + err.Error()
	}
}

func algorithm(tok *jwt.Token) string {
	if tok == nil {
		return ""
	}
	alg, _ := tok.Header["alg"].(string)
	return alg
}

func when(d *jwt.NumericDate) string {
	if d == nil {
		return "?"
	}
	return d.UTC().Format(time.RFC3339)
}

// quote bounds and quotes a value taken from a token.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func (a *authenticator) reject(w http.ResponseWriter, r *http.Request, code, reason string) {
	a.log.InfoContext(r.Context(), "request refused: not authenticated", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", reason)
	challenge := `Bearer realm="stevedore"`
	if code != "" {
		challenge += fmt.Sprintf(`, error=%q, error_description="%s"`, code, headerSafe(reason))
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // the reason reads "<JWT ...>", not "\u003cJWT ...\u003e"
	enc.Encode(apierr.Body{Code: "unauthorized", Message: reason})
}

// headerSafe keeps the characters RFC 6750 allows in error_description.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '\''
		}
		return r
	}, s)
}
