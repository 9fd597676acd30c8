package devregistry

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// diskBlobs is go-containerregistry's disk blob handler, except for Stat:
// the size of the blob's file, as a registry answers, rather than the
// sha256 of the whole file on every HEAD and GET (which, in this process,
// put hashing the blob before its first byte on every pull, a cost no
// registry adds). The digest is checked when the blob is uploaded:
// go-containerregistry verifies an upload before it is stored.
type diskBlobs struct {
	dir  string
	disk registry.BlobHandler
}

var (
	_ registry.BlobStatHandler   = diskBlobs{}
	_ registry.BlobPutHandler    = diskBlobs{}
	_ registry.BlobDeleteHandler = diskBlobs{}
)

func newDiskBlobs(dir string) diskBlobs {
	return diskBlobs{dir: dir, disk: registry.NewDiskBlobHandler(dir)}
}

// Stat returns the size of blob h's file.
func (d diskBlobs) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	fi, err := os.Stat(filepath.Join(d.dir, h.Algorithm, h.Hex))
	if errors.Is(err, os.ErrNotExist) {
		return 0, registry.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Get opens blob h's file.
func (d diskBlobs) Get(ctx context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	return d.disk.Get(ctx, repo, h)
}

// Put stores blob h, already verified by the registry.
func (d diskBlobs) Put(ctx context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	return d.disk.(registry.BlobPutHandler).Put(ctx, repo, h, rc)
}

// Delete removes blob h.
func (d diskBlobs) Delete(ctx context.Context, repo string, h v1.Hash) error {
	return d.disk.(registry.BlobDeleteHandler).Delete(ctx, repo, h)
}
