// Package claircore checks Stevedore's index reports against claircore, the
// library behind Clair's matcher: see compat_test.go.
package claircore
