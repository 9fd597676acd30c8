package app

import (
	"errors"
	"fmt"

	"github.com/stevedore-dev/stevedore/internal/layer/blobcache"
)

// openBlobCache opens the workers' blob cache. It returns nil when the cache
// is disabled (size 0), and when another process uses its directory: that
// is logged, and this process runs without a cache rather than not at all
// (a "stevedore scan" next to a running "stevedore serve", say).
func openBlobCache(cfg Config) (*blobcache.Cache, error) {
	if cfg.BlobCacheSize <= 0 {
		return nil, nil
	}
	if cfg.BlobCacheDir == "" {
		return nil, errors.New("blob cache: a size is set but no directory")
	}
	c, err := blobcache.Open(blobcache.Options{Dir: cfg.BlobCacheDir, MaxBytes: cfg.BlobCacheSize, Logger: cfg.Logger})
	if errors.Is(err, blobcache.ErrLocked) {
		cfg.Logger.Warn("blob cache directory is in use by another process; running without a blob cache (give this process its own --blob-cache-dir)",
			"dir", cfg.BlobCacheDir)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blob cache: %w", err)
	}
	st := c.Stats()
	cfg.Logger.Info("blob cache opened", "dir", cfg.BlobCacheDir, "max_bytes", cfg.BlobCacheSize, "blobs", st.Blobs, "bytes", st.Bytes)
	return c, nil
}
