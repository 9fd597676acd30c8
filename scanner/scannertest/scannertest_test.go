package scannertest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestFile(t *testing.T) {
	f := File("etc/os-release", []byte("ID=x\n"))
	if f.Path() != "etc/os-release" || f.Size() != 5 {
		t.Fatalf("Path, Size = %q, %d", f.Path(), f.Size())
	}
	for i := 0; i < 2; i++ { // Open may be called more than once.
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != "ID=x\n" {
			t.Fatalf("read %d: %q, %v", i, b, err)
		}
	}
}

func TestFromDisk(t *testing.T) {
	p := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(p, []byte("Package: a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := FromDisk(t, "var/lib/dpkg/status", p)
	if f.Path() != "var/lib/dpkg/status" || f.Size() != 11 {
		t.Fatalf("Path, Size = %q, %d", f.Path(), f.Size())
	}
}

func TestFileFunc(t *testing.T) {
	errOpen := errors.New("boom")
	f := FileFunc("x", 1<<40, func() (io.ReadCloser, error) { return nil, errOpen })
	if f.Size() != 1<<40 {
		t.Fatalf("Size = %d", f.Size())
	}
	if _, err := f.Open(); !errors.Is(err, errOpen) {
		t.Fatalf("Open error = %v", err)
	}
}
