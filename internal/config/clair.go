package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/stevedore-dev/stevedore/internal/api/clairauth"
	"github.com/stevedore-dev/stevedore/internal/api/clairproxy"
)

// maxKeyFile bounds the pre-shared key file.
const maxKeyFile = 4 << 10

// clairFlags holds the raw authentication settings.
type clairFlags struct {
	pskEnv  string // STEVEDORE_AUTH_PSK
	pskFile string
	issuers string
}

// registerClair defines the dispatcher role's authentication settings
// (internal/api/clairauth) and the Clair services /matcher/ and /notifier/ are passed
// to (internal/api/clairproxy). The pre-shared key itself comes from the environment
// (STEVEDORE_AUTH_PSK) or a file, never a flag: a flag would show it in the
// process list and in --help.
func (o *Options) registerClair(fs *flag.FlagSet) {
	o.clair.pskEnv = os.Getenv("STEVEDORE_AUTH_PSK")
	fs.StringVar(&o.clair.pskFile, "auth-psk-file", os.Getenv("STEVEDORE_AUTH_PSK_FILE"), "file holding the pre-shared key of Clair's JWT authentication, base64 as Quay's SECURITY_SCANNER_V4_PSK (env STEVEDORE_AUTH_PSK_FILE; or the key itself in env STEVEDORE_AUTH_PSK; neither: the API is open)")
	fs.StringVar(&o.clair.issuers, "auth-issuers", envString("STEVEDORE_AUTH_ISSUERS", strings.Join(clairauth.DefaultIssuers(), ",")), "accepted JWT issuers (iss), comma-separated (env STEVEDORE_AUTH_ISSUERS)")
	fs.DurationVar(&o.Auth.ClockSkew, "auth-clock-skew", o.envDuration("STEVEDORE_AUTH_CLOCK_SKEW", clairauth.DefaultClockSkew), "clock skew allowed on a JWT's exp, nbf and iat (env STEVEDORE_AUTH_CLOCK_SKEW)")
	fs.StringVar(&o.Clair.MatcherURL, "clair-matcher-url", os.Getenv("STEVEDORE_CLAIR_MATCHER_URL"), "Clair matcher that /matcher/ requests are passed to, e.g. http://clair-matcher:6060 (env STEVEDORE_CLAIR_MATCHER_URL)")
	fs.StringVar(&o.Clair.NotifierURL, "clair-notifier-url", os.Getenv("STEVEDORE_CLAIR_NOTIFIER_URL"), "Clair notifier that /notifier/ requests are passed to, e.g. http://clair-notifier:6060 (env STEVEDORE_CLAIR_NOTIFIER_URL)")
}

// validateClair checks those settings and loads the key. No error shows the
// key.
func (o *Options) validateClair() []error {
	if !o.Dispatcher {
		return nil
	}
	var errs []error
	o.Auth.Key = nil
	switch {
	case o.clair.pskEnv != "" && o.clair.pskFile != "":
		errs = append(errs, errors.New("STEVEDORE_AUTH_PSK and --auth-psk-file: set one of them"))
	case o.clair.pskEnv != "":
		k, err := clairauth.DecodeKey(o.clair.pskEnv)
		if err != nil {
			errs = append(errs, fmt.Errorf("environment STEVEDORE_AUTH_PSK: %w", err))
		}
		o.Auth.Key = k
	case o.clair.pskFile != "":
		k, err := readKeyFile(o.clair.pskFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--auth-psk-file %s: %w", o.clair.pskFile, err))
		}
		o.Auth.Key = k
	}
	o.Auth.Issuers = nil
	for i, iss := range strings.Split(o.clair.issuers, ",") {
		if iss = strings.TrimSpace(iss); iss == "" {
			errs = append(errs, fmt.Errorf("--auth-issuers %q: issuer %d is empty", o.clair.issuers, i+1))
			continue
		}
		o.Auth.Issuers = append(o.Auth.Issuers, iss)
	}
	if o.Auth.ClockSkew < 0 || o.Auth.ClockSkew > clairauth.MaxClockSkew {
		errs = append(errs, fmt.Errorf("--auth-clock-skew: %s: want 0 to %s", o.Auth.ClockSkew, clairauth.MaxClockSkew))
	}
	for _, u := range []struct{ flag, url string }{{"--clair-matcher-url", o.Clair.MatcherURL}, {"--clair-notifier-url", o.Clair.NotifierURL}} {
		if u.url == "" {
			continue
		}
		if _, err := clairproxy.ParseURL(u.url); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.flag, err))
		}
	}
	return errs
}

// readKeyFile reads a base64 key from a file of at most maxKeyFile bytes.
func readKeyFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("more than %d bytes: not a key file", maxKeyFile)
	}
	return clairauth.DecodeKey(string(b))
}
