package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerSpec is one layer of an image: its compression and its entries.
type layerSpec struct {
	format  string
	entries []entry
}

// imageSpec is an image to measure.
type imageSpec struct {
	name   string
	layers []layerSpec
}

// image is an imageSpec ready to push: each layer's body compressed once.
// A cycle makes each layer new by appending a compressed tail of its own.
type image struct {
	name   string
	bodies []body
}

type body struct {
	format       string
	compressed   []byte
	uncompressed int64
}

// prepare compresses each layer's body.
func prepare(s imageSpec) (image, error) {
	img := image{name: s.name}
	for i, l := range s.layers {
		raw, err := tarBody(l.entries)
		if err != nil {
			return image{}, fmt.Errorf("%s layer %d: %w", s.name, i, err)
		}
		c, err := compress(l.format, raw)
		if err != nil {
			return image{}, fmt.Errorf("%s layer %d: %w", s.name, i, err)
		}
		img.bodies = append(img.bodies, body{format: l.format, compressed: c, uncompressed: int64(len(raw))})
	}
	return img, nil
}

// compressedBytes is the size of the image's layers as pushed (without
// the few bytes of their tails).
func (img image) compressedBytes() int64 {
	var n int64
	for _, b := range img.bodies {
		n += int64(len(b.compressed))
	}
	return n
}

func (img image) uncompressedBytes() int64 {
	var n int64
	for _, b := range img.bodies {
		n += b.uncompressed
	}
	return n
}

// blobs returns the image's layer blobs for one cycle: each body followed
// by a tail holding id, so that every layer (and the manifest) is new.
func (img image) blobs(id string) ([][]byte, error) {
	out := make([][]byte, 0, len(img.bodies))
	for i, b := range img.bodies {
		tail, err := tarTail(fmt.Sprintf("etc/imagecost-%d", i), []byte(id+"\n"))
		if err != nil {
			return nil, err
		}
		ct, err := compress(b.format, tail)
		if err != nil {
			return nil, err
		}
		blob := make([]byte, 0, len(b.compressed)+len(ct))
		out = append(out, append(append(blob, b.compressed...), ct...))
	}
	return out, nil
}

// push pushes an OCI image of blobs (bottom first) to ref.
func push(ctx context.Context, ref string, formats []string, blobs [][]byte) error {
	ls := make([]v1.Layer, 0, len(blobs))
	for i, b := range blobs {
		mt := types.OCILayer
		if formats[i] == "zstd" {
			mt = types.OCILayerZStd
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b)), nil
		}, tarball.WithMediaType(mt))
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		ls = append(ls, l)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, ls...)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.Write(r, img, remote.WithContext(ctx))
}

// sources are where the images' contents come from.
type sources struct {
	bookworm, trixie string // gzipped root filesystems
	goroot           string
	nodeModules      string
	jars             string // unpacked Debian packages of Java libraries; empty: no Java images
}

// specs reads the contents of the images to measure. A missing Debian
// trixie root filesystem only drops its images (with a note).
func specs(src sources) ([]imageSpec, error) {
	bookworm, err := rootfs(src.bookworm, "bookworm")
	if err != nil {
		return nil, err
	}
	out := []imageSpec{
		{name: "tiny (1 file, per-job overhead)", layers: []layerSpec{{format: "gzip", entries: parents("etc")}}},
		{name: "debian 12 minbase, 1 gzip layer", layers: []layerSpec{{format: "gzip", entries: bookworm}}},
		{name: "debian 12 minbase, 1 zstd layer", layers: []layerSpec{{format: "zstd", entries: bookworm}}},
	}
	if trixie, err := rootfs(src.trixie, "trixie"); err != nil {
		fmt.Fprintf(os.Stderr, "imagecost: no Debian 13 image: %v\n", err)
	} else {
		out = append(out,
			imageSpec{name: "debian 13 minbase, 1 gzip layer", layers: []layerSpec{{format: "gzip", entries: trixie}}},
			imageSpec{name: "debian 13 minbase, 1 zstd layer", layers: []layerSpec{{format: "zstd", entries: trixie}}})
	}
	goBin, err := readTree(filepath.Join(src.goroot, "bin"), "usr/local/go/bin")
	if err != nil {
		return nil, err
	}
	goTool, err := readTree(filepath.Join(src.goroot, "pkg", "tool"), "usr/local/go/pkg/tool")
	if err != nil {
		return nil, err
	}
	goEntries := append(append(parents("usr/local/go/pkg"), goBin...), goTool...)
	out = append(out, imageSpec{name: "go toolchain binaries, 1 gzip layer", layers: []layerSpec{{format: "gzip", entries: goEntries}}})
	nm, err := readTree(src.nodeModules, "app/node_modules")
	if err != nil {
		return nil, err
	}
	out = append(out, imageSpec{name: "node_modules, 1 gzip layer", layers: []layerSpec{{format: "gzip", entries: append(parents("app"), nm...)}}})
	if src.jars != "" {
		java, err := javaSpecs(src.jars)
		if err != nil {
			return nil, err
		}
		out = append(out, java...)
	}
	out = append(out, imageSpec{name: "multi-layer: debian 12 in 3 + go app", layers: split(bookworm, goBin)})
	return out, nil
}

// split spreads a root filesystem over three gzip layers (/usr/lib, /usr/share,
// the rest with the package database) and adds an application layer of Go
// binaries.
func split(rootfs, app []entry) []layerSpec {
	var lib, share, rest []entry
	for _, e := range rootfs {
		n := strings.TrimPrefix(e.hdr.Name, "./")
		switch {
		case strings.HasPrefix(n, "usr/lib/"):
			lib = append(lib, e)
		case strings.HasPrefix(n, "usr/share/"):
			share = append(share, e)
		default:
			rest = append(rest, e)
		}
	}
	return []layerSpec{
		{format: "gzip", entries: rest}, {format: "gzip", entries: lib}, {format: "gzip", entries: share},
		{format: "gzip", entries: append(parents("usr/local/go"), app...)},
	}
}

// rootfs reads a Debian root filesystem, built with
// scripts/build-debian-rootfs.sh when file is missing.
func rootfs(file, suite string) ([]entry, error) {
	if _, err := os.Stat(file); err != nil {
		cmd := exec.Command("scripts/build-debian-rootfs.sh", file)
		cmd.Env = append(os.Environ(), "STEVEDORE_DEBIAN_SUITE="+suite)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("build Debian %s root filesystem %s (run from the module root): %w", suite, file, err)
		}
	}
	return readTarball(file)
}

// installNodeModules installs packages with npm into dir (dir/node_modules)
// when that does not exist yet.
func installNodeModules(ctx context.Context, dir string, packages []string) (string, error) {
	nm := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(nm); err == nil {
		return nm, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"imagecost","version":"1.0.0","private":true}`+"\n"), 0o644); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "npm", append([]string{"install", "--no-audit", "--no-fund"}, packages...)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm install in %s: %w", dir, err)
	}
	return nm, nil
}
