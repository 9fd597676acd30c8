package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// secretSetting is a secret given either in an environment variable or in
// a file named by a flag (or by that flag's own environment variable),
// never as a flag value: a value would show in the process list and in
// --help.
type secretSetting struct {
	envName, flagName string
	env, file         string
}

// register reads the secret's environment variable and defines its file
// flag, whose default is the environment variable fileEnv.
func (s *secretSetting) register(fs *flag.FlagSet, envName, flagName, fileEnv, usage string) {
	s.envName, s.flagName = envName, flagName
	s.env = os.Getenv(envName)
	fs.StringVar(&s.file, flagName, os.Getenv(fileEnv), usage)
}

// load returns the secret, without surrounding white space when it comes
// from a file, and where it came from, for errors; "" when neither is set.
// No error shows the secret.
func (s *secretSetting) load() (secret, where string, err error) {
	switch {
	case s.env != "" && s.file != "":
		return "", "", fmt.Errorf("%s and --%s: set one of them", s.envName, s.flagName)
	case s.env != "":
		return s.env, "environment " + s.envName, nil
	case s.file != "":
		where = "--" + s.flagName + " " + s.file
		secret, err = readSecretFile(s.file)
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", where, err)
		}
		return secret, where, nil
	}
	return "", "", nil
}

// readSecretFile reads a secret from a file of at most maxKeyFile bytes,
// without its surrounding white space (a trailing newline).
func readSecretFile(name string) (string, error) {
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
		return "", fmt.Errorf("more than %d bytes: not a key file", maxKeyFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", errors.New("empty")
	}
	return tok, nil
}
