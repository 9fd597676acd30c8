package tick_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/tick"
)

func TestEveryCallsUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick.Every(ctx, time.Millisecond, func() {
			if n.Add(1) == 3 {
				cancel()
			}
		})
	}()
	<-done
	if got := n.Load(); got < 3 {
		t.Fatalf("fn called %d times before Every returned, want at least 3", got)
	}
}

func TestEveryReturnsAtOnceOnAnEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tick.Every(ctx, time.Hour, func() { t.Error("fn called after the context ended") })
}

func TestSleep(t *testing.T) {
	if !tick.Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep on a live context = false, want true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if tick.Sleep(ctx, time.Hour) {
		t.Error("Sleep on an ended context = true, want false")
	}
}
