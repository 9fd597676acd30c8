package langpkg_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/langpkg"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// read makes one package named after the file's content, skips "skip",
// passes over "none" and fails on "fail".
func read(f scanner.File, _ *langpkg.Warnings) ([]*report.Package, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	switch s := string(b); {
	case err != nil:
		return nil, err
	case s == "skip":
		return nil, langpkg.Skip(errors.New("bad content"))
	case s == "none":
		return nil, nil
	case s == "fail":
		return nil, errors.New("failed")
	default:
		return []*report.Package{{Name: s}}, nil
	}
}

func TestScan(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    []scanner.File
		maxSize  int64
		packages []string
		warnings []string
		err      string
	}{
		{"path order", []scanner.File{scannertest.File("b", []byte("B")), scannertest.File("a", []byte("A"))}, 0, []string{"A", "B"}, nil, ""},
		{"skip", []scanner.File{scannertest.File("a", []byte("skip")), scannertest.File("b", []byte("B"))}, 0, []string{"B"}, []string{"x: a: bad content; skipped"}, ""},
		{"none", []scanner.File{scannertest.File("a", []byte("none"))}, 0, nil, nil, ""},
		{"too large", []scanner.File{scannertest.File("a", []byte("AAAA")), scannertest.File("b", []byte("B"))}, 3, []string{"B"}, []string{"x: a: 4 bytes, more than the limit of 3; skipped"}, ""},
		{"no limit", []scanner.File{scannertest.File("a", []byte("AAAA"))}, 0, []string{"AAAA"}, nil, ""},
		{"fail", []scanner.File{scannertest.File("a", []byte("fail"))}, 0, nil, nil, "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := langpkg.Scan(context.Background(), "x", tc.files, tc.maxSize, read)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range res.Packages {
				names = append(names, p.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.packages, ",") || strings.Join(res.Warnings, "|") != strings.Join(tc.warnings, "|") {
				t.Errorf("packages %q, warnings %q; want %q, %q", names, res.Warnings, tc.packages, tc.warnings)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := langpkg.Scan(ctx, "x", []scanner.File{scannertest.File("a", nil)}, 0, read); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "x: ") {
		t.Errorf("canceled: %v", err)
	}
}

func TestScanWhole(t *testing.T) {
	parse := func(b []byte) ([]string, error) {
		if string(b) == "bad" {
			return nil, &langpkg.ParseError{Reason: "not a list", Err: errors.New("bad")}
		}
		return strings.Split(string(b), ","), nil
	}
	pkg := func(s, path string) *report.Package { return &report.Package{Name: s, Filepath: path} }
	broken := scannertest.FileFunc("e", 1, func() (io.ReadCloser, error) { return nil, errors.New("no such file") })
	liar := scannertest.FileFunc("d", 1, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("aaaaa")), nil })
	for _, tc := range []struct {
		name     string
		files    []scanner.File
		packages []string
		warnings []string
		err      string
	}{
		{"items", []scanner.File{scannertest.File("a", []byte("x,y"))}, []string{"x@a", "y@a"}, nil, ""},
		{"parse error", []scanner.File{scannertest.File("b", []byte("bad")), scannertest.File("c", []byte("z"))}, []string{"z@c"}, []string{"x: b: not a list: bad; skipped"}, ""},
		{"size over", []scanner.File{scannertest.File("a", []byte("12345"))}, nil, []string{"x: a: 5 bytes, more than the limit of 4; skipped"}, ""},
		{"content over", []scanner.File{liar}, nil, []string{"x: d: more than the limit of 4 bytes; skipped"}, ""},
		{"open error", []scanner.File{broken}, nil, nil, "x: opening e: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := langpkg.ScanWhole(context.Background(), "x", tc.files, 4, parse, pkg)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range res.Packages {
				names = append(names, p.Name+"@"+p.Filepath)
			}
			if strings.Join(names, ",") != strings.Join(tc.packages, ",") || strings.Join(res.Warnings, "|") != strings.Join(tc.warnings, "|") {
				t.Errorf("packages %q, warnings %q; want %q, %q", names, res.Warnings, tc.packages, tc.warnings)
			}
		})
	}
}
