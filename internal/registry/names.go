package registry

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// ErrInvalidName is wrapped by the error of a request whose repository
// name or reference is not one a registry can have (a ".." or "." path
// element, an empty element, characters outside the distribution
// grammar). Such a request is never sent. It is permanent.
var ErrInvalidName = errors.New("invalid repository name or reference")

// pathComponent is one element of a repository name, as the OCI
// distribution specification defines it. go-containerregistry's parser
// checks the characters only, and takes "..", "." and "a//b".
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)

var (
	tagPattern    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	digestPattern = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
)

// ValidateRepository checks a repository name (the path part, without the
// registry: "library/debian"): go-containerregistry's parsing, then each
// element against the distribution grammar.
func ValidateRepository(repo string) error {
	if _, err := name.NewRepository("registry.invalid/"+repo, name.StrictValidation); err != nil {
		return fmt.Errorf("repository %q: %w: %w", repo, ErrInvalidName, err)
	}
	for _, c := range strings.Split(repo, "/") {
		if !pathComponent.MatchString(c) {
			return fmt.Errorf("repository %q: element %q is not lower-case letters and digits joined by '.', '_', '__' or '-': %w", repo, c, ErrInvalidName)
		}
	}
	return nil
}

// ParseReference parses an image reference ("registry/repo:tag",
// "repo@sha256:..."), with go-containerregistry's parsing and the checks of
// ValidateRepository.
func ParseReference(ref string, opts ...name.Option) (name.Reference, error) {
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w: %w", ref, ErrInvalidName, err)
	}
	if err := ValidateRepository(r.Context().RepositoryStr()); err != nil {
		return nil, fmt.Errorf("reference %q: %w", ref, err)
	}
	return r, nil
}

// checkPath refuses a request URL that a registry should never be sent:
// a path with "." or ".." elements (also percent-encoded), or a registry
// API path (/v2/<name>/manifests|blobs|tags|referrers/...) whose
// repository or reference is invalid.
func checkPath(u *url.URL) error {
	p := u.Path // decoded: %2e%2e is ".." here
	for _, e := range strings.Split(p, "/") {
		if e == "." || e == ".." {
			return fmt.Errorf("request path %q has a %q element: %w", p, e, ErrInvalidName)
		}
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return nil
	}
	elems := strings.Split(rest, "/")
	for i := len(elems) - 2; i >= 1; i-- {
		switch elems[i] {
		case "manifests", "blobs", "tags", "referrers":
		default:
			continue
		}
		ref := ""
		if i+1 < len(elems) {
			ref = elems[i+1]
		}
		if err := ValidateRepository(strings.Join(elems[:i], "/")); err != nil {
			return fmt.Errorf("request path %q: %w", p, err)
		}
		if elems[i] == "manifests" {
			if !tagPattern.MatchString(ref) && !digestPattern.MatchString(ref) {
				return fmt.Errorf("request path %q: reference %q is neither a tag nor a digest: %w", p, ref, ErrInvalidName)
			}
		}
		return nil
	}
	return nil
}
