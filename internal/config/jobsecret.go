package config

import (
	"flag"
	"fmt"

	"github.com/stevedore-dev/stevedore/internal/queue"
)

// registerJobSecret defines the job secret of dispatchers and workers: the
// secret from which the key sealing the layer credentials of queued jobs
// is derived (app.Config.JobSecret), from the environment
// (STEVEDORE_JOB_SECRET) or a file.
func (o *Options) registerJobSecret(fs *flag.FlagSet) {
	o.jobSecret.register(fs, "STEVEDORE_JOB_SECRET", "job-secret-file", "STEVEDORE_JOB_SECRET_FILE", fmt.Sprintf(
		"file holding a secret of at least %d bytes, the same on every dispatcher and worker, that seals the layer credentials of queued jobs (env STEVEDORE_JOB_SECRET_FILE, or the secret itself in env STEVEDORE_JOB_SECRET; neither: a node with an embedded NATS server makes a key of its own, one on --nats-url queues them unencrypted)", queue.MinJobSecret))
}

// validateJobSecret loads the job secret. No error shows it.
func (o *Options) validateJobSecret() []error {
	secret, where, err := o.jobSecret.load()
	o.JobSecret = nil
	switch {
	case err != nil:
		return []error{err}
	case secret != "" && len(secret) < queue.MinJobSecret:
		return []error{fmt.Errorf("%s: %d bytes, want at least %d (e.g. openssl rand -hex 32)", where, len(secret), queue.MinJobSecret)}
	case secret != "":
		o.JobSecret = []byte(secret)
	}
	return nil
}
