// Package clairconfig checks, with Clair's own code, the files that run
// Clair's matcher and notifier behind Stevedore: compose.yaml's "clair"
// profile (loaded with compose-go, the library Docker Compose uses) and
// deploy/clair/*.yaml (loaded with Clair's config loader, drop-ins included,
// then validated and linted with Clair's config package, as the clair binary
// does at start).
//
// It is a module of its own so that the product does not depend on Clair or
// on compose-go; scripts/test.sh runs its tests.
package clairconfig
