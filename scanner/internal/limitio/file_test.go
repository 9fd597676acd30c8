package limitio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

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

// TestParseFilesAtOnce: for any files and any n, ParseFilesAtOnce returns
// what ParseFiles returns (values in path order, or the error of the first
// file in path order that failed), and parses up to n files at once.
func TestParseFilesAtOnce(t *testing.T) {
	parse := func(_ context.Context, f scanner.File) (string, error) {
		b, err := limitio.ReadFile(f, 8)
		if strings.HasPrefix(string(b), "slowbad") {
			// Fails after the files after it (in path order) failed.
			time.Sleep(50 * time.Millisecond)
		}
		if strings.Contains(string(b), "bad") {
			return "", errors.New("corrupt " + f.Path())
		}
		return string(b), err
	}
	names := func(contents ...string) []scanner.File {
		var fs []scanner.File
		for i, c := range contents {
			// Paths in the reverse order of the contents: sorted first.
			fs = append(fs, scannertest.File(fmt.Sprintf("f%02d", len(contents)-i), []byte(c)))
		}
		return fs
	}
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	for _, tc := range []struct {
		name  string
		files []scanner.File
	}{
		{"none", nil},
		{"one", names("a")},
		{"several", names("a", "b", "c", "d", "e")},
		{"many", names(many...)},
		{"one bad", names("a", "b", "bad1", "d")},
		{"two bad: the first in path order", names("bad1", "b", "bad2", "d", "e", "f")},
		{"all bad", names("bad1", "bad2", "bad3")},
		{"the first bad fails last", names("y", "bad", "x", "slowbad")},
	} {
		want, wantErr := limitio.ParseFiles(context.Background(), "x", tc.files, parse)
		for _, n := range []int{0, 1, 2, 3, 8, 100} {
			got, err := limitio.ParseFilesAtOnce(context.Background(), "x", tc.files, n, parse)
			if errText(err) != errText(wantErr) || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s, %d at once: %v, %v; want %v, %v", tc.name, n, got, err, want, wantErr)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := limitio.ParseFilesAtOnce(ctx, "x", names("a", "b"), 2, parse); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "x: ") {
		t.Errorf("canceled: %v", err)
	}

	// Two at once: the first file's parse waits for the second's to start.
	started := make(chan struct{})
	_, err := limitio.ParseFilesAtOnce(context.Background(), "x", names("b", "a"), 2, func(_ context.Context, f scanner.File) (string, error) {
		if f.Path() == "f02" {
			close(started)
			return "", nil
		}
		select {
		case <-started:
			return "", nil
		case <-time.After(30 * time.Second):
			return "", errors.New("the second file was not parsed while the first was")
		}
	})
	if err != nil {
		t.Error(err)
	}
}
