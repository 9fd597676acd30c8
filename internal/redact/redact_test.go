package redact_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/redact"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://r.example/v2/x/blobs/sha256:aa", "https://r.example/v2/x/blobs/sha256:aa"},
		{"https://robot:pw@r.example/v2/x", "https://REDACTED@r.example/v2/x"},
		{"https://robot@r.example/v2/x", "https://REDACTED@r.example/v2/x"},
		{"https://s3.example/b/k?X-Amz-Signature=abc&X-Amz-Credential=def", "https://s3.example/b/k?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED"},
		{"http://robot:pw@r.example/%zz", "http://REDACTED@r.example/%zz"},
		{"ftp://u:p@x/y", "ftp://REDACTED@x/y"},
		{"not a url", "not a url"},
	} {
		if got := redact.URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrorKeepsTheChainAndHidesSecrets(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer tok-123456"}, "X-Key": {"key-abcdef"}}
	uri := "http://robot:pass-7890@r.example/v2/x/blobs/sha256:aa"
	secrets := redact.Secrets(uri, h)
	base := &url.Error{Op: "Get", URL: uri, Err: io.ErrUnexpectedEOF}
	err := redact.Error(fmt.Errorf("fetch: %w: registry said %q", base, "denied Bearer tok-123456 key-abcdef"), secrets...)
	for _, s := range []string{"pass-7890", "tok-123456", "key-abcdef"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("%q in %q", s, err)
		}
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("the chain is lost")
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Error("errors.As lost the url.Error")
	}
	if redact.Error(nil) != nil {
		t.Error("nil is not nil")
	}
	if e := errors.New("plain"); redact.Error(e, "secret") != e {
		t.Error("an error without secrets is not returned as is")
	}
}

func TestHeader(t *testing.T) {
	got := redact.Header(http.Header{"Authorization": {"Bearer x"}, "Accept": {"a", "b"}})
	if got.Get("Authorization") != redact.Mask || len(got["Accept"]) != 2 || got["Accept"][1] != redact.Mask {
		t.Fatalf("%v", got)
	}
}

func FuzzString(f *testing.F) {
	f.Add(`Get "http://u:secretpw@h/x?sig=1": EOF`, "secretpw")
	f.Add("parse \"http://a:b@[::1\": missing ]", "b")
	f.Fuzz(func(t *testing.T, s, secret string) {
		out := redact.String(s, secret)
		if len(secret) >= 4 && strings.Contains(out, secret) && !strings.Contains(redact.Mask, secret) && !strings.Contains(secret, redact.Mask) {
			// Masking may create the secret only out of the mask itself.
			if !strings.Contains(strings.ReplaceAll(out, redact.Mask, ""), secret) {
				return
			}
			t.Fatalf("String(%q, %q) = %q", s, secret, out)
		}
	})
}
