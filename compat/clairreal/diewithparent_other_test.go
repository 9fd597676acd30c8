//go:build !linux

package clairreal_test

import "os/exec"

// dieWithParent does nothing where there is no parent-death signal: a test
// binary killed by go test's -timeout leaves its servers running.
func dieWithParent(*exec.Cmd) {}
