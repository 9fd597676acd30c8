// Package cputime reads this process's CPU time (Process), which
// benchmarks report beside wall time: other load on the machine disturbs it
// less.
package cputime
