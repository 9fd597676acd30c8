package devregistry

import (
	"fmt"
	"net/http"
	"sync"
)

// Matcher selects requests, for Fail.
type Matcher func(*http.Request) bool

// BlobGets matches GET requests for blobs (layer and config downloads).
func BlobGets(r *http.Request) bool {
	class, _, _ := Classify(r.URL.Path)
	return class == ClassBlobs && r.Method == http.MethodGet
}

// ManifestGets matches GET requests for manifests (not HEAD, which a push
// also sends to learn whether the manifest exists).
func ManifestGets(r *http.Request) bool {
	class, _, _ := Classify(r.URL.Path)
	return class == ClassManifests && r.Method == http.MethodGet
}

// BlobGet matches GET requests for the blob with the given digest.
func BlobGet(digest string) Matcher {
	return func(r *http.Request) bool {
		class, _, ref := Classify(r.URL.Path)
		return class == ClassBlobs && r.Method == http.MethodGet && ref == digest
	}
}

// Fail returns a Middleware that answers the first n requests matched by
// match with status (for example 429 or 500) and a registry-style JSON
// error, and passes every other request through. n < 0 fails every match.
// For 429 and 503 it sets Retry-After: 1.
func Fail(status, n int, match Matcher) Middleware {
	var mu sync.Mutex
	left := n
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) {
				mu.Lock()
				fail := left != 0
				if left > 0 {
					left--
				}
				mu.Unlock()
				if fail {
					if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
						w.Header().Set("Retry-After", "1")
					}
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(status)
					fmt.Fprintf(w, `{"errors":[{"code":"UNAVAILABLE","message":"devregistry: injected %d"}]}`+"\n", status)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
