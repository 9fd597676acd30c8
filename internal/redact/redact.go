// Package redact keeps secrets out of errors, answers and logs: the user
// information of URLs (user:password@), the values of query parameters (a
// presigned storage URL's signature), and the values of request headers
// (a Clair manifest's layer headers carry registry credentials).
//
// Use URL for a URL shown to anyone, Header for headers that are logged,
// Error to wrap an error whose text may embed URLs (net/http's errors
// quote the URL they were about) or known secret values, and String for
// any other text.
package redact

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Mask replaces a secret.
const Mask = "REDACTED"

// URL returns s with its user information and query values masked:
// "https://robot:pw@r.example/v2/x?sig=abc" becomes
// "https://REDACTED@r.example/v2/x?sig=REDACTED". A string that does not
// parse as a URL has anything that looks like user information masked.
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return userinfo.ReplaceAllString(s, "${1}"+Mask+"@")
	}
	if u.User == nil && u.RawQuery == "" {
		return s
	}
	if u.User != nil {
		u.User = url.User(Mask)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{Mask}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// userinfo matches scheme://userinfo@ in text, userinfo being anything up
// to the first '@' before a '/', '?', '#', quote or space.
var userinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@\s"'` + "`" + `]*@`)

// urls matches absolute URLs in text.
var urls = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>` + "`" + `]+`)

// String returns s with the URLs in it passed through URL, and every
// occurrence of each of secrets (ignored when shorter than 4 bytes: too
// likely to be part of other words) masked.
func String(s string, secrets ...string) string {
	s = userinfo.ReplaceAllString(s, "${1}"+Mask+"@")
	s = urls.ReplaceAllStringFunc(s, URL)
	// Longest first, so that a secret containing another is masked whole.
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, Mask)
		}
	}
	return s
}

// Header returns a copy of h with every value masked, for a log line.
func Header(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		out[k] = make([]string, len(vs))
		for i := range vs {
			out[k][i] = Mask
		}
	}
	return out
}

// Secrets returns the secret values of a request: its header values and
// its URL's password, and those values' parts after a scheme word
// ("Bearer abc" yields "abc" too, since an error may quote the token
// alone). User names are not among them (they are masked in URLs, but
// would mask common words elsewhere).
func Secrets(rawURL string, h http.Header) []string {
	var out []string
	add := func(v string) {
		v = strings.TrimSpace(v)
		if v == "" {
			return
		}
		out = append(out, v)
		if _, rest, ok := strings.Cut(v, " "); ok && strings.TrimSpace(rest) != "" {
			out = append(out, strings.TrimSpace(rest))
		}
	}
	for _, vs := range h {
		for _, v := range vs {
			add(v)
		}
	}
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.PathEscape(p))
		}
	} else if m := userinfo.FindStringSubmatch(rawURL); m != nil {
		info := strings.TrimSuffix(strings.TrimPrefix(m[0], m[1]), "@")
		if _, pass, ok := strings.Cut(info, ":"); ok {
			add(pass)
		}
	}
	return out
}

// Error returns err with its text passed through String (URLs redacted,
// secrets masked). errors.Is and errors.As still see err's chain. A nil
// err stays nil.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := String(err.Error(), secrets...)
	if msg == err.Error() {
		return err
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
