package cli

import (
	"context"
	"errors"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
)

// countingResolver answers every reference with one image named after the
// call, or fails for "bad".
type countingResolver struct{ calls int }

func (c *countingResolver) Resolve(_ context.Context, ref, platform string) ([]resolve.Image, error) {
	c.calls++
	if ref == "bad" {
		return nil, errors.New("no such image")
	}
	return []resolve.Image{{Reference: ref, Platform: platform}}, nil
}

// The lookup's resolution is handed to the dispatcher once; a failure is
// not kept.
func TestReplayResolver(t *testing.T) {
	next := &countingResolver{}
	r := newReplayResolver(next)
	for i, tc := range []struct {
		ref, platform string
		wantCalls     int
		wantErr       bool
	}{
		{"a:1", "", 1, false},
		{"a:1", "", 1, false}, // replayed
		{"a:1", "", 2, false}, // replayed once only: asked again
		{"a:1", "linux/arm64", 3, false},
		{"bad", "", 4, true},
		{"bad", "", 5, true}, // a failure is not kept
	} {
		imgs, err := r.Resolve(context.Background(), tc.ref, tc.platform)
		if (err != nil) != tc.wantErr {
			t.Fatalf("call %d (%s %q): error %v, want error %t", i, tc.ref, tc.platform, err, tc.wantErr)
		}
		if err == nil && (len(imgs) != 1 || imgs[0].Reference != tc.ref || imgs[0].Platform != tc.platform) {
			t.Errorf("call %d (%s %q): got %+v", i, tc.ref, tc.platform, imgs)
		}
		if next.calls != tc.wantCalls {
			t.Errorf("call %d (%s %q): %d calls of the registry, want %d", i, tc.ref, tc.platform, next.calls, tc.wantCalls)
		}
	}
}

// A prefetched resolution is handed to the lookup and the dispatcher, one
// registry call for both; a failed one is asked again.
func TestReplayResolverPrefetch(t *testing.T) {
	for _, tc := range []struct {
		ref       string
		wantCalls []int // after each of three Resolve calls
		wantErr   bool
	}{
		{"a:1", []int{1, 1, 2}, false},
		{"bad", []int{2, 3, 4}, true},
	} {
		next := &countingResolver{}
		r := newReplayResolver(next)
		r.Prefetch(context.Background(), tc.ref, "")
		for i, want := range tc.wantCalls {
			_, err := r.Resolve(context.Background(), tc.ref, "")
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s, call %d: error %v, want error %t", tc.ref, i, err, tc.wantErr)
			}
			if next.calls != want {
				t.Errorf("%s, call %d: %d calls of the registry, want %d", tc.ref, i, next.calls, want)
			}
		}
	}
}
