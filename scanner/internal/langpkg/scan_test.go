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

// scanCase is a case of TestScan and TestScanWhole: the files scanned with
// a size limit, and the packages (as the test writes them) and warnings
// expected, or the error.
type scanCase struct {
	name               string
	files              []scanner.File
	limit              int64
	packages, warnings []string
	err                string
}

// checkScans runs each case through scan and checks its result, each
// package written by view.
func checkScans(t *testing.T, cases []scanCase, scan func([]scanner.File, int64) (*scanner.Result, error), view func(*report.Package) string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := scan(tc.files, tc.limit)
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
				names = append(names, view(p))
			}
			if strings.Join(names, ",") != strings.Join(tc.packages, ",") || strings.Join(res.Warnings, "|") != strings.Join(tc.warnings, "|") {
				t.Errorf("packages %q, warnings %q; want %q, %q", names, res.Warnings, tc.packages, tc.warnings)
			}
		})
	}
}

func TestScan(t *testing.T) {
	checkScans(t, []scanCase{
		{"path order", []scanner.File{scannertest.File("b", []byte("B")), scannertest.File("a", []byte("A"))}, 0, []string{"A", "B"}, nil, ""},
		{"skip", []scanner.File{scannertest.File("a", []byte("skip")), scannertest.File("b", []byte("B"))}, 0, []string{"B"}, []string{"x: a: bad content; skipped"}, ""},
		{"none", []scanner.File{scannertest.File("a", []byte("none"))}, 0, nil, nil, ""},
		{"too large", []scanner.File{scannertest.File("a", []byte("AAAA")), scannertest.File("b", []byte("B"))}, 3, []string{"B"}, []string{"x: a: 4 bytes, more than the limit of 3; skipped"}, ""},
		{"no limit", []scanner.File{scannertest.File("a", []byte("AAAA"))}, 0, []string{"AAAA"}, nil, ""},
		{"fail", []scanner.File{scannertest.File("a", []byte("fail"))}, 0, nil, nil, "failed"},
	}, func(files []scanner.File, maxSize int64) (*scanner.Result, error) {
		return langpkg.Scan(context.Background(), "x", files, maxSize, read)
	}, func(p *report.Package) string { return p.Name })
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
	checkScans(t, []scanCase{
		{"items", []scanner.File{scannertest.File("a", []byte("x,y"))}, 4, []string{"x@a", "y@a"}, nil, ""},
		{"parse error", []scanner.File{scannertest.File("b", []byte("bad")), scannertest.File("c", []byte("z"))}, 4, []string{"z@c"}, []string{"x: b: not a list: bad; skipped"}, ""},
		{"size over", []scanner.File{scannertest.File("a", []byte("12345"))}, 4, nil, []string{"x: a: 5 bytes, more than the limit of 4; skipped"}, ""},
		{"content over", []scanner.File{liar}, 4, nil, []string{"x: d: more than the limit of 4 bytes; skipped"}, ""},
		{"open error", []scanner.File{broken}, 4, nil, nil, "x: opening e: no such file"},
	}, func(files []scanner.File, limit int64) (*scanner.Result, error) {
		return langpkg.ScanWhole(context.Background(), "x", files, limit, parse, pkg)
	}, func(p *report.Package) string { return p.Name + "@" + p.Filepath })
}
