package limitio_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
)

func TestReader(t *testing.T) {
	for _, tc := range []struct {
		in       string
		limit    int64
		exceeded bool
	}{
		{"", 0, false},
		{"abc", 3, false},
		{"abc", 4, false},
		{"abcd", 3, true},
		{"abc", 0, true},
	} {
		r := limitio.NewReader(strings.NewReader(tc.in), tc.limit)
		got, err := io.ReadAll(r)
		if r.Exceeded != tc.exceeded || (tc.exceeded != errors.Is(err, limitio.ErrTooLarge)) {
			t.Errorf("%q limit %d: exceeded %v err %v", tc.in, tc.limit, r.Exceeded, err)
		}
		if !tc.exceeded && string(got) != tc.in {
			t.Errorf("%q limit %d: read %q", tc.in, tc.limit, got)
		}
	}
}
