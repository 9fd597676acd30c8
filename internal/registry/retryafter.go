package registry

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfterSeconds bounds a Retry-After in seconds, so that a huge value
// cannot overflow a time.Duration.
const maxRetryAfterSeconds = 366 * 24 * 3600

// ParseRetryAfter reads an HTTP Retry-After header value (RFC 9110, section
// 10.2.3): a number of seconds ("120") or an HTTP date ("Wed, 21 Oct 2015
// 07:28:00 GMT", and the obsolete RFC 850 and asctime forms), and returns how
// long to wait from now. A date in the past is a wait of 0. ok is false for
// an empty or malformed value (a negative or fractional number, an unknown
// date format), which the caller should treat as absent.
func ParseRetryAfter(v string, now time.Time) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if ne, isNum := err.(*strconv.NumError); isNum && ne.Err == strconv.ErrRange && allDigits(v) {
				return maxRetryAfterSeconds * time.Second, true
			}
			return 0, false
		}
		return time.Duration(min(n, maxRetryAfterSeconds)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return min(d, maxRetryAfterSeconds*time.Second), true
	}
	return 0, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
