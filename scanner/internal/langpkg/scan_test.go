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
