package devregistry

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// PushRootfs builds an image with one layer per tarball (plain or gzipped tar
// files on disk, in order, the first one at the bottom) and a minimal config
// (linux/amd64), pushes it to ref and returns the manifest digest. A gzipped
// tarball is pushed byte for byte as its layer blob; a plain one is gzipped.
// Loopback registries (127.0.0.1, localhost) are reached over plain HTTP.
func PushRootfs(ctx context.Context, ref string, layers ...string) (v1.Hash, error) {
	ls := make([]v1.Layer, 0, len(layers))
	for _, p := range layers {
		l, err := tarball.LayerFromFile(p, tarball.WithCompressedCaching)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("devregistry: layer from %s: %w", p, err)
		}
		ls = append(ls, l)
	}
	return PushLayers(ctx, ref, ls...)
}

// PushLayers builds an image from layers (bottom first) with a minimal
// config (linux/amd64), pushes it to ref and returns the manifest digest.
func PushLayers(ctx context.Context, ref string, layers ...v1.Layer) (v1.Hash, error) {
	img, err := Image(layers...)
	if err != nil {
		return v1.Hash{}, err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("devregistry: parse reference %q: %w", ref, err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return v1.Hash{}, fmt.Errorf("devregistry: push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("devregistry: digest of %s: %w", ref, err)
	}
	return d, nil
}

// Image returns an image made of layers (bottom first) with a minimal
// linux/amd64 config, without pushing it.
func Image(layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, fmt.Errorf("devregistry: append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("devregistry: config file: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("devregistry: set config: %w", err)
	}
	return img, nil
}

// LayerFromFiles builds a gzipped tar layer from a map of path to content.
// Paths are relative to the root ("etc/os-release"; a leading "/" or "./"
// is dropped). Entries are written in sorted order with fixed owners (0:0),
// mode 0644 and mtime, so the same map always gives the same digest. Parent
// directories get their own entries (mode 0755), as in real layers; a path
// ending in "/" is an empty directory. Whiteouts are plain files named
// ".wh.NAME".
func LayerFromFiles(files map[string][]byte) (v1.Layer, error) {
	b, err := TarFromFiles(files)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("devregistry: layer from files: %w", err)
	}
	return l, nil
}

// TarFromFiles returns the uncompressed tar that LayerFromFiles puts in its
// layer.
func TarFromFiles(files map[string][]byte) ([]byte, error) {
	mtime := time.Unix(0, 0).UTC()
	dirs := map[string]bool{}
	regular := map[string][]byte{}
	for p, content := range files {
		isDir := strings.HasSuffix(p, "/")
		clean := strings.TrimPrefix(path.Clean("/"+p), "/")
		if clean == "" || clean == "." {
			return nil, fmt.Errorf("devregistry: bad layer path %q", p)
		}
		if isDir {
			dirs[clean] = true
		} else {
			if _, dup := regular[clean]; dup {
				return nil, fmt.Errorf("devregistry: path %q given twice", clean)
			}
			regular[clean] = content
		}
		for d := path.Dir(clean); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for p := range regular {
		if dirs[p] {
			return nil, fmt.Errorf("devregistry: %q is both a file and a directory", p)
		}
	}
	names := make([]string, 0, len(dirs)+len(regular))
	for d := range dirs {
		names = append(names, d)
	}
	for p := range regular {
		names = append(names, p)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		var hdr *tar.Header
		if dirs[n] {
			hdr = &tar.Header{Typeflag: tar.TypeDir, Name: n + "/", Mode: 0o755, ModTime: mtime}
		} else {
			hdr = &tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(regular[n])), ModTime: mtime}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("devregistry: tar header %s: %w", n, err)
		}
		if !dirs[n] {
			if _, err := tw.Write(regular[n]); err != nil {
				return nil, fmt.Errorf("devregistry: tar write %s: %w", n, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("devregistry: close tar: %w", err)
	}
	return buf.Bytes(), nil
}
