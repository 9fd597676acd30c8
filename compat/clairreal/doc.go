// Package clairreal is the last check, automated: Stevedore tried as
// a Quay operator would, with Clair's real programs, unmodified.
//
// Its test builds Clair's clair and clairctl (v4.9.0, from this module's
// graph: go.mod's tool directives) and Stevedore's stevedore command (from
// the repository), and runs them as separate processes: stevedore serve with
// a pre-shared key and --clair-matcher-url, Clair's matcher with its
// indexer_addr pointing at Stevedore and its own fresh database, advisories
// imported offline with clairctl import-updaters (testdata/updates.jsonl),
// and clairctl report against Stevedore as its only endpoint. Clair's Go
// client then asks Stevedore for affected manifests as Clair's notifier does,
// and Clair's notifier runs: it learns about a new advisory, asks Stevedore
// which manifests it affects, and calls a stand-in for Quay's webhook. The
// notification is then read and deleted through Stevedore's /notifier/.
//
// It is a module of its own so that the product does not depend on Clair.
// Stevedore is not imported but built and run: Clair v4.9.0 needs an older
// otelhttp (WithRouteTag, removed in the version Stevedore uses) than one
// module graph can hold with Stevedore. scripts/test.sh runs its tests
// (Postgres at DATABASE_URL; the go command on PATH).
package clairreal
