package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPickContentType(t *testing.T) {
	for _, tc := range []struct {
		name   string
		accept []string // nil: no header
		want   string
		err    error
	}{
		{"no header", nil, indexReportTypes[0], nil},
		{"empty header", []string{""}, indexReportTypes[0], nil},
		{"clair's type", []string{"application/vnd.clair.index_report.v1+json"}, indexReportTypes[0], nil},
		{"json", []string{"application/json"}, "application/json", nil},
		{"any", []string{"*/*"}, indexReportTypes[0], nil},
		{"subtype wildcard", []string{"application/*"}, indexReportTypes[0], nil},
		{"q orders", []string{"application/vnd.clair.index_report.v1+json;q=0.5, application/json"}, "application/json", nil},
		{"two headers", []string{"text/html", "application/json;q=0.8"}, "application/json", nil},
		{"q=0 refuses", []string{"application/json;q=0"}, "", errMediaType},
		{"nothing common", []string{"text/html, image/*"}, "", errMediaType},
		{"malformed", []string{"text/"}, "", errors.New("")},
		{"bare token", []string{"json"}, "", errors.New("")},
		{"bad q", []string{"application/json;q=2"}, "", errors.New("")},
		{"too many ranges", []string{strings.Repeat("text/plain,", 65)}, "", errors.New("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.accept != nil {
				h["Accept"] = tc.accept
			}
			got, err := pickContentType(h, indexReportTypes)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("error %v", err)
			case tc.err != nil && err == nil:
				t.Fatalf("picked %q, want an error", got)
			case errors.Is(tc.err, errMediaType) && !errors.Is(err, errMediaType):
				t.Fatalf("error %v, want errMediaType", err)
			case tc.err == nil && got != tc.want:
				t.Fatalf("picked %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParsePrefer(t *testing.T) {
	for _, tc := range []struct {
		vals []string
		want preferences
	}{
		{nil, preferences{}},
		{[]string{"respond-async"}, preferences{RespondAsync: true}},
		{[]string{"Respond-Async ; foo=bar"}, preferences{RespondAsync: true}},
		{[]string{"return=minimal, respond-async, wait=10"}, preferences{RespondAsync: true, Wait: 10 * time.Second}},
		{[]string{"wait=5", "respond-async"}, preferences{RespondAsync: true, Wait: 5 * time.Second}},
		{[]string{`wait="7"`}, preferences{Wait: 7 * time.Second}},
		{[]string{"wait=-1"}, preferences{}},
		{[]string{"wait=abc"}, preferences{}},
		{[]string{"wait=99999999999"}, preferences{}},
		{[]string{"wait=3, wait=9"}, preferences{Wait: 3 * time.Second}},
		{[]string{"respond-async=yes"}, preferences{}},
		{[]string{",,,"}, preferences{}},
	} {
		if got := parsePrefer(tc.vals); got != tc.want {
			t.Errorf("parsePrefer(%q) = %+v, want %+v", tc.vals, got, tc.want)
		}
	}
}

func TestETagMatches(t *testing.T) {
	for _, tc := range []struct {
		header, etag string
		want         bool
	}{
		{`"abc"`, `"abc"`, true},
		{`W/"abc"`, `"abc"`, true},
		{`"x", "abc"`, `"abc"`, true},
		{`*`, `"abc"`, true},
		{`"abd"`, `"abc"`, false},
		{`abc`, `"abc"`, true}, // Clair's clients send the state unquoted too
		{``, `"abc"`, false},
	} {
		if got := etagMatches(tc.header, tc.etag); got != tc.want {
			t.Errorf("etagMatches(%q, %q) = %v", tc.header, tc.etag, got)
		}
	}
}

func FuzzPickContentType(f *testing.F) {
	for _, s := range []string{"", "application/json", "*/*;q=0.1, text/html", "a/b;q=x", "text/", strings.Repeat("a/b,", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		got, err := pickContentType(http.Header{"Accept": {accept}}, indexReportTypes)
		if err == nil && got != indexReportTypes[0] && got != indexReportTypes[1] {
			t.Fatalf("picked %q, not an offer", got)
		}
	})
}

func FuzzParsePrefer(f *testing.F) {
	for _, s := range []string{"", "respond-async", "wait=10, respond-async; x=y", `wait="5"`, strings.Repeat("a,", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prefer string) {
		p := parsePrefer([]string{prefer})
		if p.Wait < 0 || p.Wait > 999999999*time.Second {
			t.Fatalf("wait %s out of range", p.Wait)
		}
	})
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string // nil: no header
		want   bool
	}{
		{"no header", nil, false},
		{"empty header", []string{""}, false},
		{"gzip", []string{"gzip"}, true},
		{"Go's transport", []string{"gzip"}, true},
		{"Python requests (Quay)", []string{"gzip, deflate"}, true},
		{"requests with brotli and zstd", []string{"gzip, deflate, br, zstd"}, true},
		{"x-gzip", []string{"x-gzip"}, true},
		{"case", []string{"GZip;Q=0.5"}, true},
		{"q=0 refuses", []string{"gzip;q=0"}, false},
		{"q=0.000 refuses", []string{"gzip;q=0.000"}, false},
		{"refused, though * is not", []string{"gzip;q=0, *"}, false},
		{"any", []string{"*"}, true},
		{"any refused", []string{"*;q=0"}, false},
		{"deflate only", []string{"deflate"}, false},
		{"identity only", []string{"identity"}, false},
		{"identity preferred", []string{"gzip;q=0.5, identity"}, false},
		{"gzip preferred", []string{"gzip, identity;q=0.5"}, true},
		{"identity refused", []string{"gzip, identity;q=0"}, true},
		{"two headers", []string{"deflate", "gzip;q=0.1"}, true},
		{"first of two counts", []string{"gzip;q=0, gzip"}, false},
		{"spaces", []string{" gzip ; q=1 "}, true},
		{"malformed q ignored", []string{"gzip;q=2"}, false},
		{"malformed q ignored, * counts", []string{"gzip;q=abc, *"}, true},
		{"NaN", []string{"gzip;q=NaN"}, false},
		{"exponent", []string{"gzip;q=1e0"}, false},
		{"other parameters", []string{"gzip;level=9"}, true},
	} {
		h := http.Header{}
		if tc.header != nil {
			h["Accept-Encoding"] = tc.header
		}
		if got := acceptsGzip(h); got != tc.want {
			t.Errorf("%s: Accept-Encoding %q: %v, want %v", tc.name, tc.header, got, tc.want)
		}
	}
}
