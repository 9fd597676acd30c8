// Command worker runs the worker role alone: it takes index jobs from an
// external NATS JetStream (NATS_URL), holds a Postgres lease per manifest
// digest, fetches and scans layers, and stores the reports. Run as many
// replicas as the registry and database can feed.
package main

import "github.com/stevedore-dev/stevedore/internal/config"

func main() { config.Main("stevedore-worker", config.Roles{Worker: true}) }
