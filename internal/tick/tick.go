// Package tick holds the two ways the background loops wait: calling a
// function every period, and sleeping, each until a context ends. It
// imports nothing of the module, so that every layer may use it.
package tick

import (
	"context"
	"time"
)

// Every calls fn every d, the first time d after the call, until ctx ends.
// A call of fn that takes longer than d delays the next one (ticks are
// dropped, not queued).
func Every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// Sleep waits d or until ctx ends, and reports whether d passed (false:
// ctx ended first).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
