package clairreal_test

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes cmd's process receive SIGKILL when the test binary
// dies, also when it dies without running its cleanups (go test's
// -timeout panics and exits): the servers it starts do not outlive it.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
