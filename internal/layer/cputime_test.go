package layer

import (
	"time"

	"github.com/stevedore-dev/stevedore/internal/testing/cputime"
)

// cpuTime is the process's user+system CPU time so far: the benchmarks
// report it per op, which other load on the machine disturbs less than wall
// time.
func cpuTime() time.Duration { return cputime.Process() }
