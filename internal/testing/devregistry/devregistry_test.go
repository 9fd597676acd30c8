package devregistry_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

// writeTar writes a tar of files to path, gzipped when gz is set.
func writeTar(t *testing.T, path string, gz bool, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if gz {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		data = zb.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPushRootfsPullBack(t *testing.T) {
	srv := devregistry.NewTestServer(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.tar.gz")
	top := filepath.Join(dir, "top.tar")
	writeTar(t, base, true, map[string]string{
		"etc/os-release":      "ID=debian\nVERSION_ID=\"12\"\n",
		"var/lib/dpkg/status": "Package: base-files\nStatus: install ok installed\n",
	})
	writeTar(t, top, false, map[string]string{"usr/bin/hello": "#!/bin/sh\necho hi\n"})
	baseBytes, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	ref := srv.Ref("debian:test")
	dgst, err := devregistry.PushRootfs(ctx, ref, base, top)
	if err != nil {
		t.Fatal(err)
	}

	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	srv.Counter().Reset()
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	got, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got != dgst {
		t.Fatalf("pulled digest %s, pushed %s", got, dgst)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || len(cf.RootFS.DiffIDs) != 2 {
		t.Fatalf("config: os %q arch %q diff_ids %d", cf.OS, cf.Architecture, len(cf.RootFS.DiffIDs))
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 2 {
		t.Fatalf("%d layers, want 2", len(m.Layers))
	}
	// A gzipped tarball is pushed byte for byte.
	if m.Layers[0].Size != int64(len(baseBytes)) {
		t.Errorf("base layer size %d, file is %d bytes", m.Layers[0].Size, len(baseBytes))
	}

	// Pull every layer once and check digests against the manifest and
	// the bytes counted against the compressed sizes.
	want := pullLayers(t, srv, img, m)
	// The config blob was fetched too (by ConfigFile).
	want += m.Config.Size
	if got := srv.Counter().BlobBytes(); got != want {
		t.Errorf("counter: %d blob bytes, want %d (layers + config)", got, want)
	}
	if got := srv.Counter().Requests(devregistry.ClassManifests); got != 1 {
		t.Errorf("counter: %d manifest requests, want 1", got)
	}
	if got := srv.Counter().Requests(devregistry.ClassBlobs); got != 3 {
		t.Errorf("counter: %d blob requests, want 3", got)
	}
	if got := len(srv.Counter().Log()); got < 4 {
		t.Errorf("log has %d entries, want at least 4", got)
	}
}

// pullLayers reads every layer of img once, checks its digest and size
// against m and the server's counter, and returns the bytes read.
func pullLayers(t *testing.T, srv *devregistry.Server, img v1.Image, m *v1.Manifest) int64 {
	t.Helper()
	var want int64
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if ld != m.Layers[i].Digest {
			t.Errorf("layer %d digest %s, manifest says %s", i, ld, m.Layers[i].Digest)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		if err != nil {
			t.Fatal(err)
		}
		// Closing verifies the digest of what was read.
		if err := rc.Close(); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if n != m.Layers[i].Size {
			t.Errorf("layer %d: read %d bytes, manifest says %d", i, n, m.Layers[i].Size)
		}
		if got := srv.Counter().BlobBytesFor(ld.String()); got != m.Layers[i].Size {
			t.Errorf("layer %d: counter says %d bytes, want %d", i, got, m.Layers[i].Size)
		}
		if got := srv.Counter().BlobFetches(ld.String()); got != 1 {
			t.Errorf("layer %d fetched %d times, want 1", i, got)
		}
		want += m.Layers[i].Size
	}
	return want
}

func TestLayerFromFilesDeterministic(t *testing.T) {
	files := map[string][]byte{
		"/etc/os-release":           []byte("ID=alpine\n"),
		"./lib/apk/db/installed":    []byte("P:musl\nV:1.2.4-r2\n\n"),
		"usr/share/doc/":            nil,
		"etc/.wh.removed-something": nil,
	}
	a, err := devregistry.LayerFromFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	b, err := devregistry.LayerFromFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("same files, different digests: %s %s", da, db)
	}
	rc, err := a.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	want := []string{
		"etc/", "etc/.wh.removed-something", "etc/os-release",
		"lib/", "lib/apk/", "lib/apk/db/", "lib/apk/db/installed",
		"usr/", "usr/share/", "usr/share/doc/",
	}
	if len(names) != len(want) {
		t.Fatalf("entries %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %q, want %q", names, want)
		}
	}
	if _, err := devregistry.LayerFromFiles(map[string][]byte{"a": nil, "a/b": nil}); err == nil {
		t.Error("a file that is also a directory: no error")
	}
}

func TestMiddlewareInjectsFailures(t *testing.T) {
	srv := devregistry.NewTestServer(t,
		devregistry.WithMiddleware(devregistry.Fail(http.StatusTooManyRequests, 1, devregistry.ManifestGets)),
	)
	ctx := context.Background()
	l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": []byte("ID=debian\n")})
	if err != nil {
		t.Fatal(err)
	}
	ref := srv.Ref("fail/me:latest")
	if _, err := devregistry.PushLayers(ctx, ref, l); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}

	// No retries: the first manifest request gets the injected 429.
	_, err = remote.Get(r, remote.WithContext(ctx), remote.WithRetryStatusCodes())
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("first get: %v, want a 429 transport error", err)
	}
	// Only one was to fail.
	if _, err := remote.Get(r, remote.WithContext(ctx)); err != nil {
		t.Fatalf("second get: %v", err)
	}
	var statuses []int
	for _, req := range srv.Counter().Log() {
		if req.Class == devregistry.ClassManifests && req.Method == http.MethodGet {
			statuses = append(statuses, req.Status)
		}
	}
	if len(statuses) != 2 || statuses[0] != http.StatusTooManyRequests || statuses[1] != http.StatusOK {
		t.Errorf("manifest GET statuses %v, want [429 200]", statuses)
	}

	// A custom middleware: every blob GET answers 500.
	srv2 := devregistry.NewTestServer(t, devregistry.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if devregistry.BlobGets(r) {
				http.Error(w, "boom", http.StatusInternalServerError)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	ref2 := srv2.Ref("fail/blobs:latest")
	if _, err := devregistry.PushLayers(ctx, ref2, l); err != nil {
		t.Fatal(err)
	}
	r2, _ := name.ParseReference(ref2)
	img, err := remote.Image(r2, remote.WithContext(ctx), remote.WithRetryStatusCodes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.ConfigFile(); err == nil {
		t.Error("config fetch succeeded through a failing middleware")
	}
	if got := srv2.Counter().BlobBytes(); got != 0 {
		t.Errorf("failed blob GETs counted %d blob bytes", got)
	}
}

func TestStartAndConcurrentCounting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := devregistry.New()
	srv, err := reg.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	l, err := devregistry.LayerFromFiles(map[string][]byte{"data": bytes.Repeat([]byte("x"), 1<<20)})
	if err != nil {
		t.Fatal(err)
	}
	ref := srv.Ref("conc:1")
	if _, err := devregistry.PushLayers(ctx, ref, l); err != nil {
		t.Fatal(err)
	}
	ld, _ := l.Digest()
	size, _ := l.Size()
	srv.Counter().Reset()

	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(srv.URL() + "/v2/conc/blobs/" + ld.String())
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := srv.Counter().BlobBytesFor(ld.String()); got != n*size {
		t.Errorf("%d bytes counted, want %d", got, n*size)
	}
	if got := srv.Counter().BlobFetches(ld.String()); got != n {
		t.Errorf("%d fetches counted, want %d", got, n)
	}
	if got := srv.Counter().BlobBytesByDigest()[ld.String()]; got != n*size {
		t.Errorf("by digest: %d", got)
	}

	// Cancelling the context stops the server.
	cancel()
	if err := srv.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if _, err := http.Get(srv.URL() + "/v2/"); err == nil {
		t.Error("server still answers after close")
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		path      string
		class     devregistry.Class
		repo, ref string
	}{
		{"/v2/", devregistry.ClassBase, "", ""},
		{"/v2", devregistry.ClassBase, "", ""},
		{"/v2/library/debian/manifests/bookworm", devregistry.ClassManifests, "library/debian", "bookworm"},
		{"/v2/debian/blobs/sha256:abc", devregistry.ClassBlobs, "debian", "sha256:abc"},
		{"/v2/a/b/blobs/uploads/", devregistry.ClassUploads, "a/b", ""},
		{"/v2/a/blobs/uploads/1234", devregistry.ClassUploads, "a", ""},
		{"/v2/a/tags/list", devregistry.ClassTags, "a", ""},
		{"/v2/_catalog", devregistry.ClassOther, "", ""},
		{"/healthz", devregistry.ClassOther, "", ""},
	}
	for _, c := range cases {
		class, repo, ref := devregistry.Classify(c.path)
		if class != c.class || repo != c.repo || ref != c.ref {
			t.Errorf("Classify(%q) = %q %q %q, want %q %q %q", c.path, class, repo, ref, c.class, c.repo, c.ref)
		}
	}
}
