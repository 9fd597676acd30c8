package config

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/stevedore-dev/stevedore/internal/api/clairauth"
	"github.com/stevedore-dev/stevedore/internal/api/clairproxy"
)

// maxKeyFile bounds a file holding a secret (the pre-shared key, a token).
const maxKeyFile = 4 << 10

// clairFlags holds the raw authentication settings.
type clairFlags struct {
	psk     secretSetting // STEVEDORE_AUTH_PSK or --auth-psk-file
	issuers string
}

// registerClair defines the dispatcher role's authentication settings
// (internal/api/clairauth) and the Clair services /matcher/ and /notifier/ are passed
// to (internal/api/clairproxy). The pre-shared key itself comes from the environment
// (STEVEDORE_AUTH_PSK) or a file, never a flag: a flag would show it in the
// process list and in --help.
func (o *Options) registerClair(fs *flag.FlagSet) {
	o.clair.psk.register(fs, "STEVEDORE_AUTH_PSK", "auth-psk-file", "STEVEDORE_AUTH_PSK_FILE", "file holding the pre-shared key of Clair's JWT authentication, base64 as Quay's SECURITY_SCANNER_V4_PSK (env STEVEDORE_AUTH_PSK_FILE; or the key itself in env STEVEDORE_AUTH_PSK; neither: the API is open)")
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
	if psk, where, err := o.clair.psk.load(); err != nil {
		errs = append(errs, err)
	} else if psk != "" {
		if o.Auth.Key, err = clairauth.DecodeKey(psk); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
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
