//go:build linux

package clairreal_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestChildDiesWithTheTestBinary runs this test binary again as a parent
// that starts a long-running child the way start does, and kills the
// parent with SIGKILL (as go test's -timeout ends a binary, no cleanup
// run): the child must be gone soon after.
func TestChildDiesWithTheTestBinary(t *testing.T) {
	if os.Getenv("CLAIRREAL_PARENT") == "1" {
		parentProcess()
		return
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithTheTestBinary$")
	parent.Env = append(os.Environ(), "CLAIRREAL_PARENT=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		parent.Process.Kill()
		t.Fatalf("the parent said nothing: %v", err)
	}
	pid, err := strconv.Atoi(line[:len(line)-1])
	if err != nil {
		t.Fatalf("child pid %q: %v", line, err)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("child %d is not running before its parent is killed", pid)
	}
	parent.Process.Kill()
	parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d outlived its killed parent by 10 s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// parentProcess starts a child that would run for a minute, prints its pid
// and waits to be killed.
func parentProcess() {
	child := exec.Command("sleep", "60")
	dieWithParent(child)
	if err := child.Start(); err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	go child.Wait() // reaped here while the parent lives
	fmt.Println(child.Process.Pid)
	time.Sleep(time.Minute)
	os.Exit(1)
}
