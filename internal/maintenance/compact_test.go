package maintenance_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/maintenance"
	"github.com/stevedore-dev/stevedore/report"
)

// compactCalls is a store of digests for the compactor, which records the
// calls made to it and fails the first one after failAfter.
type compactCalls struct {
	mu        sync.Mutex
	digests   []report.Digest
	twice     map[report.Digest]bool
	failAfter report.Digest
	calls     []string // "after:limit", "!" for a failed call
	passes    []time.Time
}

func (s *compactCalls) compact(_ context.Context, after report.Digest, limit int) (report.Digest, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAfter != "" && after == s.failAfter {
		s.failAfter = ""
		s.calls = append(s.calls, "!")
		return "", 0, errors.New("database went away")
	}
	s.calls = append(s.calls, string(after)+":"+string(rune('0'+limit)))
	var last report.Digest
	n := 0
	for _, d := range s.digests {
		if d <= after || limit == 0 {
			continue
		}
		limit--
		last = d
		if s.twice[d] {
			delete(s.twice, d)
			n++
		}
	}
	if last == "" {
		s.passes = append(s.passes, time.Now())
	}
	return last, n, nil
}

// TestCompactor: the compactor goes over the reports in batches of rate ×
// interval, carries on from where it was after a failed round, and rests
// between passes.
func TestCompactor(t *testing.T) {
	s := &compactCalls{
		digests:   []report.Digest{"a", "b", "c", "d", "e"},
		twice:     map[report.Digest]bool{"b": true, "e": true},
		failAfter: "b",
	}
	const interval, rest = 10 * time.Millisecond, 300 * time.Millisecond
	c := maintenance.NewCompactor(s.compact, maintenance.Sweep{Interval: interval, Rate: 200, Logger: slog.New(slog.DiscardHandler)}, rest)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two passes", 10*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.passes) >= 2
	})
	c.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	// A batch of 2 (200 a second, every 10 ms); the round after "b" fails
	// and is made again.
	want := []string{":2", "!", "b:2", "d:2", "e:2", ":2"}
	if !slices.Equal(s.calls[:len(want)], want) {
		t.Fatalf("calls %q, want %q first", s.calls, want)
	}
	if len(s.twice) != 0 {
		t.Fatalf("left stored twice: %v", s.twice)
	}
	if gap := s.passes[1].Sub(s.passes[0]); gap < rest {
		t.Fatalf("next pass %s after the one before, want a rest of %s", gap, rest)
	}
}
