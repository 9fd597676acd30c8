//go:build !unix

package blobcache

import (
	"fmt"
	"os"
)

// lockDir opens the lock file; other systems get no advisory lock, so one
// process per cache directory is up to the operator there.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	return f, nil
}
