package config_test

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/pkg/config"
)

func TestValidate(t *testing.T) {
	worker := config.Roles{Worker: true}
	for _, tc := range []struct {
		name  string
		roles config.Roles
		env   map[string]string
		args  []string
		want  []string // substrings of the error; none: valid
	}{
		{"valid worker", worker, nil, []string{"--database-url=postgres://x", "--nats-url=nats://y"}, nil},
		{"missing everything", worker, nil, nil, []string{"--database-url: required", "--nats-url: required"}},
		{"embedded nats needs no url", config.Roles{Worker: true, EmbeddedNATS: true}, nil, []string{"--database-url=postgres://x"}, nil},
		{"bad numbers", worker, nil, []string{"--database-url=x", "--nats-url=y", "--workers=0", "--lease-ttl=10ms", "--max-deliver=0"},
			[]string{"--workers: 0", "--lease-ttl: 10ms", "--max-deliver: 0"}},
		{"malformed environment", worker, map[string]string{"STEVEDORE_WORKERS": "many", "STEVEDORE_ACK_WAIT": "soon"},
			[]string{"--database-url=x", "--nats-url=y"}, []string{`STEVEDORE_WORKERS="many"`, `STEVEDORE_ACK_WAIT="soon"`}},
		{"bad replicas", worker, nil, []string{"--database-url=x", "--nats-url=y", "--nats-replicas=7"}, []string{"--nats-replicas: 7"}},
		{"replicas from the environment", worker, map[string]string{"STEVEDORE_NATS_REPLICAS": "-1"}, []string{"--database-url=x", "--nats-url=y"}, []string{"--nats-replicas: -1"}},
		{"environment defaults", worker, map[string]string{"DATABASE_URL": "postgres://x", "NATS_URL": "nats://y", "STEVEDORE_WORKERS": "4"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"DATABASE_URL", "NATS_URL", "STEVEDORE_WORKERS", "STEVEDORE_ACK_WAIT", "STEVEDORE_NATS_REPLICAS"} {
				t.Setenv(k, tc.env[k])
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o := config.Register(fs, tc.roles)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate(tc.roles)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("valid, want errors %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
