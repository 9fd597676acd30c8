package e2e_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/stevedore-dev/stevedore/internal/layer"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/report"
)

// spoolBomb is a layer of members gzip members, each a tar entry of a
// zero-filled var/lib/dpkg/status of size bytes: a few MB that a reader
// without bounds spools as members*size bytes (the same path again and
// again, each copy kept until the end of the layer).
func spoolBomb(t *testing.T, members int, size int64) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, err := gzip.NewWriterLevel(&member, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(zeros)) {
		if _, err := tw.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
			t.Fatal(err)
		}
	}
	// No tw.Close: the end-of-archive blocks would end the tar at the
	// first member.
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(member.Bytes(), members)
}

// bytesWritten is what this process has written with write(2) and its
// kind so far (Linux's /proc/self/io wchar): disk, pipes and sockets.
func bytesWritten(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatalf("reading the bytes written by this process: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("/proc/self/io: %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("/proc/self/io has no wchar: %q", b)
	return 0
}

// TestSpoolBombFailsItsReportWithBoundedDisk: the layer of issue 11 (40 gzip
// members of a 250 MiB zero-filled dpkg status, 10 MB compressed, which
// wrote a 10.4 GB spool file) fails its report with the reason once it has
// spooled the layer's limit; the process wrote little more than that, left
// no spool file, and goes on with other work.
func TestSpoolBombFailsItsReportWithBoundedDisk(t *testing.T) {
	const spoolLimit = 64 << 20
	h := newHarness(t)
	spoolDir := t.TempDir()
	budget := layer.NewSpoolBudget(256 << 20)
	cfg := h.config(1, true)
	cfg.LayerOptions = layer.Options{TempDir: spoolDir, MaxSpool: spoolLimit, ProcessSpool: budget}
	h.start(cfg)
	blobs := newBlobServer(t)
	bomb := spoolBomb(t, 40, 250<<20)
	if len(bomb) > 16<<20 {
		t.Fatalf("the bomb is %d bytes, want a few MB", len(bomb))
	}

	before := bytesWritten(t)
	m := manifestOf(blobs.layer("spool-bomb", bomb, ""))
	r := h.indexWait(t, m)
	written := bytesWritten(t) - before

	want := "more than the limit of 67108864 bytes spooled to disk (--layer-max-spool)"
	if r.State != report.StateIndexError || !strings.Contains(r.Err, want) || !strings.Contains(r.Err, "var/lib/dpkg/status") {
		t.Fatalf("state %s err %q, want IndexError with %q", r.State, r.Err, want)
	}
	// The spooled bytes, the blob served to the worker, the API's and
	// the database's traffic: far from the 10 GB the layer expands to.
	if written > 4*spoolLimit {
		t.Errorf("the process wrote %d bytes while indexing the bomb, want at most %d", written, 4*spoolLimit)
	}
	if budget.Peak() > spoolLimit {
		t.Errorf("%d bytes spooled at once, more than the layer's limit of %d", budget.Peak(), spoolLimit)
	}
	if budget.Used() != 0 {
		t.Errorf("%d bytes of the spool budget still held", budget.Used())
	}
	if left, err := os.ReadDir(spoolDir); err != nil || len(left) != 0 {
		t.Errorf("spool directory after the failure: %v, %v", left, err)
	}
	if runs, _ := h.runs(m.Hash); runs != 1 {
		t.Errorf("%d runs, want 1: a layer over a limit is not retried", runs)
	}

	// The worker goes on.
	good, err := devregistry.TarFromFiles(map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("a")})
	if err != nil {
		t.Fatal(err)
	}
	m = manifestOf(blobs.layer("good", gz(t, good), ""))
	if r := h.indexWait(t, m); r.State != report.StateIndexFinished || len(r.Packages) != 1 {
		t.Fatalf("good manifest after the bomb: %s %q", r.State, r.Err)
	}
}

func npmManifests(prefix string, n int) map[string][]byte {
	files := map[string][]byte{}
	for i := range n {
		files[fmt.Sprintf("app/node_modules/%s%d/package.json", prefix, i)] = fmt.Appendf(nil, `{"name":"%s%d","version":"1.0.0"}`, prefix, i)
	}
	return files
}

// TestPackageCapsFailTheirReport: a layer or a report with more packages
// than --layer-max-packages or --report-max-packages ends IndexError with
// the limit in the reason, once (not retried); at the limits a report is
// finished whole.
func TestPackageCapsFailTheirReport(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(1, true)
	cfg.MaxLayerPackages = 50
	cfg.MaxReportPackages = 80
	h.start(cfg)
	blobs := newBlobServer(t)
	layer := func(name string, files map[string][]byte) *report.Layer {
		t.Helper()
		b, err := devregistry.TarFromFiles(files)
		if err != nil {
			t.Fatal(err)
		}
		return blobs.layer(name, gz(t, b), "")
	}
	var dpkg51, dpkg30 []string
	for i := range 51 {
		dpkg51 = append(dpkg51, fmt.Sprintf("d%d", i))
	}
	dpkg30 = dpkg51[:30]
	for _, tc := range []struct {
		name     string
		layers   []*report.Layer
		want     string // the reason; "": finished
		packages int
	}{
		{name: "more package manifests than the layer limit",
			layers: []*report.Layer{layer("npm51", npmManifests("a", 51))},
			want:   "more than the limit of 50 files for scanner npm (--layer-max-packages)"},
		{name: "more packages in one database than the layer limit",
			layers: []*report.Layer{layer("dpkg51", map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus(dpkg51...)})},
			want:   "51 packages, more than the limit of 50 per layer (--layer-max-packages)"},
		{name: "more packages in the layers than the report limit",
			layers: []*report.Layer{layer("npm45a", npmManifests("b", 45)), layer("npm45b", npmManifests("c", 45))},
			want:   "its layers hold 90 packages, more than the limit of 80 per report (--report-max-packages)"},
		{name: "at both limits",
			layers:   []*report.Layer{layer("npm50", npmManifests("e", 50)), layer("dpkg30", map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus(dpkg30...)})},
			packages: 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := manifestOf(tc.layers...)
			r := h.indexWait(t, m)
			if tc.want == "" {
				if r.State != report.StateIndexFinished || len(r.Packages) != tc.packages {
					t.Fatalf("state %s, %d packages, err %q; want IndexFinished with %d", r.State, len(r.Packages), r.Err, tc.packages)
				}
				return
			}
			if r.State != report.StateIndexError || !strings.Contains(r.Err, tc.want) || len(r.Packages) != 0 {
				t.Fatalf("state %s, %d packages, err %q; want IndexError with %q", r.State, len(r.Packages), r.Err, tc.want)
			}
			if runs, _ := h.runs(m.Hash); runs != 1 {
				t.Errorf("%d runs, want 1: a report over a limit is not retried", runs)
			}
		})
	}
}
