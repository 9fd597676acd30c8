package api

import (
	"errors"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxAcceptRanges bounds how many media ranges of Accept are considered
// (Clair's negotiation compares every range with every offer).
const maxAcceptRanges = 64

// errMediaType is a request whose Accept names none of the offered types.
var errMediaType = errors.New("no common media type")

type mediaRange struct {
	typ, sub string
	q        float64
}

// pickContentType chooses the answer's media type among offers (the first
// is the default), as Clair's indexer does: no Accept header (or an empty
// one) takes the first offer; otherwise the media ranges are ordered by q
// (stable, default 1) and the first range matching an offer, wildcards
// honoured, picks it. A range with q=0 is "not acceptable". It returns
// errMediaType when nothing matches, another error for a malformed header.
func pickContentType(h http.Header, offers []string) (string, error) {
	vals, ok := h["Accept"]
	if !ok {
		return offers[0], nil
	}
	ranges, err := parseAccept(vals)
	if err != nil {
		return "", err
	}
	if len(ranges) == 0 {
		return offers[0], nil
	}
	slices.SortStableFunc(ranges, func(a, b mediaRange) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	for _, r := range ranges {
		if r.q <= 0 {
			break
		}
		for _, o := range offers {
			t, s, _ := strings.Cut(o, "/")
			if (r.typ == "*" && r.sub == "*") || (r.typ == t && (r.sub == s || r.sub == "*")) {
				return o, nil
			}
		}
	}
	return "", errMediaType
}

// parseAccept parses Accept header values into media ranges.
func parseAccept(vals []string) ([]mediaRange, error) {
	var out []mediaRange
	for _, v := range vals {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if len(out) == maxAcceptRanges {
				return nil, errors.New("header Accept: more than 64 media ranges")
			}
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				return nil, errors.New("header Accept: " + strconv.Quote(part) + ": " + err.Error())
			}
			typ, sub, ok := strings.Cut(mt, "/")
			if !ok {
				// mime.ParseMediaType accepts a bare token; a media range
				// needs a subtype.
				return nil, errors.New("header Accept: " + strconv.Quote(part) + ": want type/subtype")
			}
			r := mediaRange{typ: typ, sub: sub, q: 1}
			if qs, ok := params["q"]; ok {
				q, err := strconv.ParseFloat(qs, 64)
				if err != nil || q < 0 || q > 1 {
					return nil, errors.New("header Accept: " + strconv.Quote(part) + ": q must be a number from 0 to 1")
				}
				r.q = q
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// preferences are the RFC 7240 preferences the API honours.
type preferences struct {
	// RespondAsync asks for 202 at once rather than waiting for the report.
	RespondAsync bool
	// Wait is the longest the client wants to wait (0: not said).
	Wait time.Duration
}

// maxPreferences bounds how many preferences of Prefer are read.
const maxPreferences = 32

// parsePrefer reads the Prefer header values (RFC 7240 section 2):
// comma-separated preferences, each a token with an optional "=" value and
// ";"-separated parameters. Unknown or malformed preferences are ignored, as
// the RFC asks; the first occurrence of a preference counts.
func parsePrefer(vals []string) preferences {
	var p preferences
	seen := map[string]bool{}
	n := 0
	for _, v := range vals {
		for part := range strings.SplitSeq(v, ",") {
			if n == maxPreferences {
				return p
			}
			n++
			pref, _, _ := strings.Cut(part, ";")
			name, val, hasVal := strings.Cut(pref, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			val = strings.Trim(strings.TrimSpace(val), `"`)
			if name == "" || seen[name] {
				continue
			}
			seen[name] = true
			switch name {
			case "respond-async":
				p.RespondAsync = !hasVal
			case "wait":
				// delta-seconds: 1*DIGIT.
				if val == "" || strings.TrimLeft(val, "0123456789") != "" || len(val) > 9 {
					continue
				}
				s, _ := strconv.Atoi(val)
				p.Wait = time.Duration(s) * time.Second
			}
		}
	}
	return p
}

// etagMatches reports whether an If-None-Match header value names etag (a
// quoted entity tag) or is "*". Weak and strong tags compare alike (weak
// comparison, RFC 9110 section 13.1.2).
func etagMatches(header, etag string) bool {
	want := strings.TrimPrefix(etag, "W/")
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == want || strings.Trim(t, `"`) == strings.Trim(want, `"`) {
			return true
		}
	}
	return false
}

// maxCodings bounds how many codings of Accept-Encoding are read.
const maxCodings = 32

// acceptsGzip reports whether the request's Accept-Encoding (RFC 9110
// section 12.5.3) allows a gzip answer and does not prefer identity: gzip
// (or x-gzip) with a q above 0, or, gzip not named, "*" with a q above 0;
// and identity, when named, with a q no higher than gzip's. "gzip;q=0"
// refuses gzip. No header, or an empty one, asks for identity. Of a coding
// named twice the first counts; an element with a malformed q is ignored.
func acceptsGzip(h http.Header) bool {
	q := map[string]float64{}
	n := 0
	for _, v := range h.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			if n == maxCodings {
				break
			}
			n++
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding == "x-gzip" {
				coding = "gzip"
			}
			w, ok := codingQ(params)
			if _, seen := q[coding]; !ok || seen || coding == "" {
				continue
			}
			q[coding] = w
		}
	}
	gz, ok := q["gzip"]
	if !ok {
		gz = q["*"]
	}
	id, named := q["identity"]
	return gz > 0 && (!named || id <= gz)
}

// codingQ reads the weight of an Accept-Encoding element from its
// parameters (";q=0.5"; 1 when none): false when it is malformed.
func codingQ(params string) (float64, bool) {
	q := 1.0
	if params == "" {
		return q, true
	}
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		// qvalue: "0" or "1", then "." and at most three digits.
		if v == "" || len(v) > 5 || strings.Trim(v, "0123456789.") != "" || (v[0] != '0' && v[0] != '1') || (len(v) > 1 && v[1] != '.') {
			return 0, false
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f > 1 {
			return 0, false
		}
		q = f
	}
	return q, true
}
