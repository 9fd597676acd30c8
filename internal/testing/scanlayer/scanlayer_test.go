package scanlayer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/internal/testing/scanlayer"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner/all"
	"github.com/stevedore-dev/stevedore/scanner/dpkg"
)

// TestRead reads a layer holding a Debian os-release and a real dpkg
// status (claircore's debian-only), with a whiteout, with the default
// scanners.
func TestRead(t *testing.T) {
	status, err := os.ReadFile(fixtures.Path(t, "dpkg/claircore_debian-only.status"))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := devregistry.TarFromFiles(map[string][]byte{
		"etc/os-release":      []byte("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
		"var/lib/dpkg/status": status,
		"opt/.wh.gone":        nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	d := report.Digest("sha256:" + hex.EncodeToString(sum[:]))
	l, err := scanlayer.Read(context.Background(), blob, d, all.Default(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	installed, err := dpkg.Parse(context.Background(), bytes.NewReader(status), dpkg.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Digest != d || len(l.Distributions) != 1 || l.Distributions[0].VersionID != "12" {
		t.Fatalf("layer %s: distributions %+v", l.Digest, l.Distributions)
	}
	if len(installed) == 0 || len(l.Packages) != len(installed) || !slices.Contains(l.PackageDBs, "var/lib/dpkg/status") {
		t.Fatalf("%d packages, want the status file's %d; package databases %q", len(l.Packages), len(installed), l.PackageDBs)
	}
	if !slices.Contains(l.Whiteouts, "opt/gone") {
		t.Fatalf("whiteouts %q", l.Whiteouts)
	}
}
