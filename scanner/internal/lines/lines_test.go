package lines

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestScanner(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		in      io.Reader
		want    []string
		wantErr string
	}{
		{"lines", context.Background(), strings.NewReader("a\r\nb\n\nc"), []string{"a", "b", "", "c"}, ""},
		{"empty", context.Background(), strings.NewReader(""), nil, ""},
		{"NUL byte", context.Background(), strings.NewReader("a\nb\x00\nc\n"), []string{"a"}, "line 2: NUL byte: binary data, not a test file"},
		{"too long", context.Background(), strings.NewReader("a\n" + strings.Repeat("x", 17) + "\n"), []string{"a"}, "line 2: longer than 16 bytes"},
		{"read error", context.Background(), io.MultiReader(strings.NewReader("a\n"), iotestErr{}), []string{"a"}, "after line 1: broken"},
		{"canceled", canceled, strings.NewReader(strings.Repeat("a\n", checkEvery+1)), nil, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.ctx, tc.in, 16, "a test file")
			var got []string
			for s.Scan() {
				if s.Line() != len(got)+1 {
					t.Errorf("Line() = %d at line %d", s.Line(), len(got)+1)
				}
				got = append(got, string(s.Bytes()))
			}
			if tc.name == "canceled" {
				if !errors.Is(s.Err(), context.Canceled) || len(got) != checkEvery-1 {
					t.Errorf("err = %v after %d lines; want context.Canceled after %d", s.Err(), len(got), checkEvery-1)
				}
				return
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("lines = %q, want %q", got, tc.want)
			}
			if err := s.Err(); (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if s.Scan() {
				t.Error("Scan after the end is true")
			}
		})
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("broken") }
