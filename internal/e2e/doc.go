// Package e2e holds Stevedore's end-to-end tests: the real pipeline
// (registry -> HTTP API -> dispatcher -> JetStream -> workers -> Postgres)
// with go-containerregistry's in-process registry, an embedded NATS JetStream
// server and a real Postgres (a schema per test).
package e2e
