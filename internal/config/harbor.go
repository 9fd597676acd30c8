package config

import (
	"flag"
	"fmt"
)

// registerHarbor defines the dispatcher role's Harbor scanner API setting
// (internal/api/harbor): the bearer token of Stevedore's registration in
// Harbor, from the environment (STEVEDORE_HARBOR_TOKEN) or a file.
func (o *Options) registerHarbor(fs *flag.FlagSet) {
	o.harborToken.register(fs, "STEVEDORE_HARBOR_TOKEN", "harbor-token-file", "STEVEDORE_HARBOR_TOKEN_FILE", "file holding the bearer token Harbor sends to the scanner API under /harbor/api/v1/ (the registration's \"Bearer\" authorization; env STEVEDORE_HARBOR_TOKEN_FILE, or the token itself in env STEVEDORE_HARBOR_TOKEN; neither: the Harbor API is disabled)")
}

// validateHarbor loads the token. No error shows it.
func (o *Options) validateHarbor() []error {
	if !o.Dispatcher {
		return nil
	}
	tok, where, err := o.harborToken.load()
	o.Harbor.Token = tok
	if err == nil && tok != "" {
		if err = o.Harbor.Validate(); err != nil {
			err = fmt.Errorf("%s: %w", where, err)
		}
	}
	if err != nil {
		return []error{err}
	}
	return nil
}
