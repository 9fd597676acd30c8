package registry_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/registry"
)

func TestValidateRepository(t *testing.T) {
	for _, tc := range []struct {
		repo string
		ok   bool
	}{
		{"library/debian", true},
		{"a", true},
		{"org/team/app-1.2_x__y", true},
		{"a---b", true},
		{"..", false},
		{"../../x", false},
		{"a/../b", false},
		{"./a", false},
		{"a/.", false},
		{"a//b", false},
		{"a..b", false},
		{"a/", false},
		{"/a", false},
		{"-a", false},
		{"a-", false},
		{"_a", false},
		{"a___b", false},
		{"A", false},
		{"a b", false},
		{"", false},
	} {
		err := registry.ValidateRepository(tc.repo)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, registry.ErrInvalidName)) {
			t.Errorf("ValidateRepository(%q) = %v, want ok=%v", tc.repo, err, tc.ok)
		}
	}
}

// The transport refuses a request with "." or ".." path elements, or a
// registry API path naming an invalid repository or reference, whoever
// built it (go-containerregistry's remote, the fetcher, a webhook lookup).
func TestTransportRefusesBadPaths(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := registry.New(fast(registry.Config{}), quiet)
	d := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/v2/", true},
		{"/v2/library/debian/manifests/12", true},
		{"/v2/library/debian/manifests/" + d, true},
		{"/v2/library/debian/blobs/" + d, true},
		{"/v2/library/debian/tags/list", true},
		{"/v2/auth", true},
		{"/token", true},
		{"/v2/../../x/manifests/1", false},
		{"/v2/%2e%2e/%2e%2e/x/manifests/1", false},
		{"/v2/a/../b/blobs/" + d, false},
		{"/v2/a//b/manifests/1", false},
		{"/v2/a/manifests/-tag", false},
		{"/v2/a/manifests/..", false},
		{"/v2/a/blobs/notadigest", true},
		{"/storage/../secret", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			before := requests.Load()
			_, err := get(t, c.Transport(), srv.URL+tc.path)
			sent := requests.Load() != before
			if tc.ok && (err != nil || !sent) {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && (!errors.Is(err, registry.ErrInvalidName) || sent) {
				t.Fatalf("sent=%v err=%v, want ErrInvalidName and no request", sent, err)
			}
		})
	}
}

func FuzzValidateRepository(f *testing.F) {
	for _, s := range []string{"library/debian", "../x", "a//b", "a__b", "a-b.c_d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, repo string) {
		if registry.ValidateRepository(repo) != nil {
			return
		}
		for _, e := range strings.Split(repo, "/") {
			if e == "" || e == "." || e == ".." || strings.ContainsAny(e, "%\\?#") {
				t.Fatalf("accepted %q", repo)
			}
		}
	})
}
