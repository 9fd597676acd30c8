package config

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/stevedore-dev/stevedore/internal/queue"
)

// jobSecretFlags holds the raw setting of the secret from which the key
// sealing the layer credentials of queued jobs is derived.
type jobSecretFlags struct {
	env  string // STEVEDORE_JOB_SECRET
	file string
}

// registerJobSecret defines the job secret of dispatchers and workers: the
// secret from which the key sealing the layer credentials of queued jobs
// is derived (app.Config.JobSecret), from the environment (STEVEDORE_JOB_SECRET)
// or a file, never a flag value.
func (o *Options) registerJobSecret(fs *flag.FlagSet) {
	o.jobSecret.env = os.Getenv("STEVEDORE_JOB_SECRET")
	fs.StringVar(&o.jobSecret.file, "job-secret-file", os.Getenv("STEVEDORE_JOB_SECRET_FILE"), fmt.Sprintf(
		"file holding a secret of at least %d bytes, the same on every dispatcher and worker, that seals the layer credentials of queued jobs (env STEVEDORE_JOB_SECRET_FILE, or the secret itself in env STEVEDORE_JOB_SECRET; neither: a node with an embedded NATS server makes a key of its own, one on --nats-url queues them unencrypted)", queue.MinJobSecret))
}

// validateJobSecret loads the job secret. No error shows it.
func (o *Options) validateJobSecret() []error {
	o.JobSecret = nil
	var key string
	var where string
	switch {
	case o.jobSecret.env != "" && o.jobSecret.file != "":
		return []error{errors.New("STEVEDORE_JOB_SECRET and --job-secret-file: set one of them")}
	case o.jobSecret.env != "":
		key, where = o.jobSecret.env, "environment STEVEDORE_JOB_SECRET"
	case o.jobSecret.file != "":
		where = "--job-secret-file " + o.jobSecret.file
		var err error
		if key, err = readTokenFile(o.jobSecret.file); err != nil {
			return []error{fmt.Errorf("%s: %w", where, err)}
		}
	default:
		return nil
	}
	if len(key) < queue.MinJobSecret {
		return []error{fmt.Errorf("%s: %d bytes, want at least %d (e.g. openssl rand -hex 32)", where, len(key), queue.MinJobSecret)}
	}
	o.JobSecret = []byte(key)
	return nil
}
