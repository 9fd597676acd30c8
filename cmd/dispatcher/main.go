// Command dispatcher runs the dispatcher role alone: the HTTP API (Clair's
// indexer API and the image-reference endpoint), publishing index jobs to an
// external NATS JetStream (NATS_URL) with dedup. Scale it out behind a load
// balancer; run cmd/worker replicas to do the indexing.
package main

import "github.com/stevedore-dev/stevedore/internal/config"

func main() { config.Main("stevedore-dispatcher", config.Roles{Dispatcher: true}) }
