package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// harborFlags holds the raw settings of Harbor's scanner API.
type harborFlags struct {
	tokenEnv  string // STEVEDORE_HARBOR_TOKEN
	tokenFile string
}

// registerHarbor defines the dispatcher role's Harbor scanner API setting
// (internal/api/harbor): the bearer token of Stevedore's registration in
// Harbor, from the environment (STEVEDORE_HARBOR_TOKEN) or a file, never a
// flag value (it would show in the process list and in --help).
func (o *Options) registerHarbor(fs *flag.FlagSet) {
	o.harbor.tokenEnv = os.Getenv("STEVEDORE_HARBOR_TOKEN")
	fs.StringVar(&o.harbor.tokenFile, "harbor-token-file", os.Getenv("STEVEDORE_HARBOR_TOKEN_FILE"), "file holding the bearer token Harbor sends to the scanner API under /harbor/api/v1/ (the registration's \"Bearer\" authorization; env STEVEDORE_HARBOR_TOKEN_FILE, or the token itself in env STEVEDORE_HARBOR_TOKEN; neither: the Harbor API is disabled)")
}

// validateHarbor loads the token. No error shows it.
func (o *Options) validateHarbor() []error {
	if !o.Dispatcher {
		return nil
	}
	var errs []error
	o.Harbor.Token = ""
	switch {
	case o.harbor.tokenEnv != "" && o.harbor.tokenFile != "":
		errs = append(errs, errors.New("STEVEDORE_HARBOR_TOKEN and --harbor-token-file: set one of them"))
	case o.harbor.tokenEnv != "":
		o.Harbor.Token = o.harbor.tokenEnv
		if err := o.Harbor.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("environment STEVEDORE_HARBOR_TOKEN: %w", err))
		}
	case o.harbor.tokenFile != "":
		tok, err := readTokenFile(o.harbor.tokenFile)
		if err == nil {
			o.Harbor.Token = tok
			err = o.Harbor.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("--harbor-token-file %s: %w", o.harbor.tokenFile, err))
		}
	}
	return errs
}

// readTokenFile reads a token from a file of at most maxKeyFile bytes,
// without its surrounding white space (a trailing newline).
func readTokenFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxKeyFile {
		return "", fmt.Errorf("more than %d bytes: not a token file", maxKeyFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", errors.New("empty")
	}
	return tok, nil
}
