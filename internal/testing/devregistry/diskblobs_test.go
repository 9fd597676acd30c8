package devregistry_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

// TestBlobDir pushes to a registry that keeps its blobs on disk and reads
// them back: HEAD and GET answer a stored blob's size and bytes, and an
// unknown blob's 404.
func TestBlobDir(t *testing.T) {
	dir := t.TempDir()
	srv := devregistry.NewTestServer(t, devregistry.WithBlobDir(dir))
	l, err := devregistry.LayerFromFiles(map[string][]byte{"etc/os-release": []byte("ID=disk\n")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := devregistry.PushLayers(ctx, srv.Ref("disk/app:1"), l); err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	rc, _ := l.Compressed()
	want, _ := io.ReadAll(rc)
	if _, err := os.Stat(filepath.Join(dir, d.Algorithm, d.Hex)); err != nil {
		t.Fatalf("blob not under the directory: %v", err)
	}
	repo, _ := name.NewRepository(srv.Addr + "/disk/app")
	missing := "sha256:" + string(bytes.Repeat([]byte("0"), 64))
	tests := []struct {
		name, method, digest string
		status               int
		body                 []byte
	}{
		{"HEAD of a stored blob", http.MethodHead, d.String(), http.StatusOK, nil},
		{"GET of a stored blob", http.MethodGet, d.String(), http.StatusOK, want},
		{"HEAD of an unknown blob", http.MethodHead, missing, http.StatusNotFound, nil},
		{"GET of an unknown blob", http.MethodGet, missing, http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, tt.method, "http://"+srv.Addr+"/v2/"+repo.RepositoryStr()+"/blobs/"+tt.digest, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != http.StatusOK {
				return
			}
			if resp.ContentLength != int64(len(want)) {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(want))
			}
			if tt.body != nil && !bytes.Equal(body, tt.body) {
				t.Errorf("body of %d bytes differs from the blob pushed", len(body))
			}
		})
	}
	// The image pulls back whole.
	ref, err := name.ParseReference(srv.Ref("disk/app:1"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if ls, err := img.Layers(); err != nil || len(ls) != 1 {
		t.Fatalf("layers: %d, %v", len(ls), err)
	}
}
