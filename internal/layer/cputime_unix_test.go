//go:build unix

package layer

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time so far: the benchmarks
// report it per op, which other load on the machine disturbs less than wall
// time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
