package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// Permanent reports whether err is a Postgres error that the same write
// would meet again: the data itself is refused (class 22, data exception,
// such as a byte sequence that is not UTF-8; class 21, cardinality; a NOT
// NULL or CHECK violation), or the statement cannot work (class 42, syntax
// or access rule; 0A, feature not supported; 54, program limit exceeded).
// Connection failures, serialization failures, deadlocks, unique violations
// from a concurrent insert, a server shutting down: not permanent, a retry
// may succeed.
func Permanent(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) != 5 {
		return false
	}
	switch pe.Code[:2] {
	case "21", "22", "42", "0A", "54":
		return true
	}
	switch pe.Code {
	case "23502", "23514": // not_null_violation, check_violation
		return true
	}
	return false
}
