// Package migrations holds Stevedore's Postgres schema as ordered SQL files,
// embedded so that every binary carries the schema it expects and applies it
// at start-up (see internal/postgres).
package migrations

import "embed"

// FS holds the migration files, named NNNNN_description.sql in goose format.
//
//go:embed *.sql
var FS embed.FS
