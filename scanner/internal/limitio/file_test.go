package limitio_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/limitio"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

var errOpen = errors.New("no such file")

func TestParseFileAndReadFile(t *testing.T) {
	parse := func(r io.Reader) (string, error) {
		b, err := io.ReadAll(r)
		if strings.Contains(string(b), "bad") {
			return "", errors.New("corrupt")
		}
		return string(b), err
	}
	liar := scannertest.FileFunc("p", 1, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("badbadbad")), nil })
	broken := scannertest.FileFunc("p", 1, func() (io.ReadCloser, error) { return nil, errOpen })
	for _, tc := range []struct {
		name           string
		f              limitio.File
		parsed, parseE string
		read, readE    string
	}{
		{"fits", scannertest.File("p", []byte("abc")), "abc", "", "abc", ""},
		{"size over", scannertest.File("p", []byte("abcdef")), "", "x: p: size 6 bytes exceeds the limit of 4", "", "size 6 bytes exceeds the limit of 4"},
		{"content over", liar, "", "x: p: more than 4 bytes", "", "more than 4 bytes"},
		{"parse error", scannertest.File("p", []byte("bad")), "", "x: parsing p: corrupt", "bad", ""},
		{"open error", broken, "", "x: opening p: no such file", "", "opening: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := limitio.ParseFile("x", tc.f, 4, parse)
			if got != tc.parsed || errText(err) != tc.parseE {
				t.Errorf("ParseFile = %q, %v; want %q, %q", got, err, tc.parsed, tc.parseE)
			}
			b, err := limitio.ReadFile(tc.f, 4)
			if string(b) != tc.read || errText(err) != tc.readE {
				t.Errorf("ReadFile = %q, %v; want %q, %q", b, err, tc.read, tc.readE)
			}
		})
	}
	if _, err := limitio.ParseFile("x", broken, 4, parse); !errors.Is(err, errOpen) {
		t.Errorf("open error not wrapped: %v", err)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestParseFiles(t *testing.T) {
	parse := func(_ context.Context, f scanner.File) (string, error) {
		b, err := limitio.ReadFile(f, 4)
		if string(b) == "bad" {
			return "", errors.New("corrupt " + f.Path())
		}
		return string(b), err
	}
	files := []scanner.File{scannertest.File("c", []byte("C")), scannertest.File("a", []byte("A")), scannertest.File("b", []byte("B"))}
	got, err := limitio.ParseFiles(context.Background(), "x", files, parse)
	if err != nil || len(got) != 3 || got[0] != (limitio.Parsed[string]{Path: "a", Value: "A"}) || got[2] != (limitio.Parsed[string]{Path: "c", Value: "C"}) {
		t.Errorf("got %v, %v; want a, b and c in path order", got, err)
	}
	if files[0].Path() != "c" {
		t.Error("the caller's files were sorted")
	}
	files = append(files, scannertest.File("a0", []byte("bad")))
	if got, err := limitio.ParseFiles(context.Background(), "x", files, parse); got != nil || errText(err) != "corrupt a0" {
		t.Errorf("parse error: %v, %v", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := limitio.ParseFiles(ctx, "x", files, parse); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "x: ") {
		t.Errorf("canceled: %v", err)
	}
}
