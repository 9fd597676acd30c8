package measure

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	sorted := []time.Duration{ms(1), ms(2), ms(3), ms(4)}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{name: "empty", sorted: nil, p: 0.5, want: 0},
		{name: "median", sorted: sorted, p: 0.5, want: ms(3)},
		{name: "p99", sorted: sorted, p: 0.99, want: ms(4)},
		{name: "all", sorted: sorted, p: 1, want: ms(4)},
		{name: "first", sorted: sorted, p: 0, want: ms(1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

// TestLoad runs loads that end without a clock: each client fails after
// its own number of answers (the deadline is far), or the deadline has
// passed at once.
func TestLoad(t *testing.T) {
	broken := errors.New("broken")
	tests := []struct {
		name      string
		d         time.Duration
		answers   []int // per client, before it fails
		wantN     int
		wantErr   error
		wantCalls int64
	}{
		{name: "each client stops at its error, its figures dropped", d: time.Hour, answers: []int{4, 0, 2}, wantN: 0, wantErr: broken, wantCalls: 9},
		{name: "deadline passed", d: 0, answers: []int{4, 4}, wantN: 0, wantCalls: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			r, err := Load(len(tc.answers), tc.d, func(c int) func() (int64, error) {
				left := tc.answers[c]
				return func() (int64, error) {
					calls.Add(1)
					if left == 0 {
						return 0, broken
					}
					left--
					return 10, nil
				}
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Load: err %v, want %v", err, tc.wantErr)
			}
			if r.N != tc.wantN || len(r.Latencies) != tc.wantN || r.Bytes != int64(10*tc.wantN) || calls.Load() != tc.wantCalls {
				t.Errorf("N %d, %d latencies, %d bytes, %d calls; want N %d, %d calls", r.N, len(r.Latencies), r.Bytes, calls.Load(), tc.wantN, tc.wantCalls)
			}
			var sum Result
			sum.Add(r)
			sum.Add(r)
			if sum.N != 2*r.N || sum.Bytes != 2*r.Bytes || len(sum.Latencies) != 2*len(r.Latencies) || sum.Elapsed != 2*r.Elapsed || sum.CPU != 2*r.CPU {
				t.Errorf("Add twice: %+v from %+v", sum, r)
			}
		})
	}
}
