package fetch_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/layer/fetch"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/report"
)

// slowServer serves /<mode>: "idle" sends its headers and one byte, then
// nothing; "trickle" sends a byte every 20 ms; "silent" never answers;
// "fast" sends the whole blob.
func slowServer(t *testing.T, blob []byte, silent *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		if mode == "fast" {
			w.Write(blob)
			return
		}
		if mode == "silent" {
			silent.Add(1)
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		w.WriteHeader(http.StatusOK)
		for i := range blob {
			w.Write(blob[i : i+1])
			w.(http.Flusher).Flush()
			wait := 20 * time.Millisecond
			if mode == "idle" {
				wait = time.Hour
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(wait):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestStalledDownloadsFail(t *testing.T) {
	blob := []byte(strings.Repeat("x", 4096))
	digest := report.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256(blob)))
	var silent atomic.Int32
	srv := slowServer(t, blob, &silent)
	client := func() *registry.Client {
		return fast(registry.Config{ResponseHeaderTimeout: 200 * time.Millisecond})
	}
	for _, tc := range []struct {
		mode   string
		limits fetch.StallLimits
		want   string // empty: the download succeeds
	}{
		{"idle", fetch.StallLimits{Idle: 200 * time.Millisecond, MinRate: -1}, "no data for 200ms"},
		{"trickle", fetch.StallLimits{Idle: -1, MinRate: 1024, Window: 300 * time.Millisecond}, "under the minimum of 1024 bytes/s"},
		{"silent", fetch.StallLimits{}, "timeout awaiting response headers"},
		{"fast", fetch.StallLimits{Idle: 200 * time.Millisecond, MinRate: 1024, Window: 300 * time.Millisecond}, ""},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			f := fetch.New(fetch.WithClient(client()), fetch.WithLogger(quiet), fetch.WithStallLimits(tc.limits))
			got, err := readAll(t, f, &report.Layer{Hash: digest, URI: srv.URL + "/blob/" + tc.mode})
			if tc.want == "" {
				if err != nil || string(got) != string(blob) {
					t.Fatalf("%d bytes, %v", len(got), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, fetch.ErrPermanent) {
				t.Fatalf("got %v, want a transient error with %q", err, tc.want)
			}
			if tc.mode == "silent" && silent.Load() != 3 {
				t.Fatalf("%d attempts, want 3: a timeout waiting for the answer is retried", silent.Load())
			}
			if tc.mode != "silent" && !errors.Is(err, fetch.ErrStalled) {
				t.Fatalf("got %v, want ErrStalled", err)
			}
			if len(got) >= len(blob) {
				t.Fatalf("read the whole blob")
			}
		})
	}
}
