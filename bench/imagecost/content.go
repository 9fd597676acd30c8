package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// entry is one tar entry: its header and, for a regular file, its content.
type entry struct {
	hdr  *tar.Header
	data []byte
}

// readTarball reads every entry of a gzipped tarball (a root filesystem of
// scripts/build-debian-rootfs.sh).
func readTarball(file string) ([]entry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open root filesystem: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	tr := tar.NewReader(zr)
	var es []entry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return es, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, hdr.Name, err)
		}
		es = append(es, entry{hdr: hdr, data: data})
	}
}

// readTree reads the directories, regular files and symbolic links under
// root as tar entries named under prefix ("usr/local/go/bin/go"), with
// numeric owner 0 and mtime 0, in lexical order.
func readTree(root, prefix string) ([]entry, error) {
	var es []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name, Mode: int64(info.Mode().Perm()), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		e := entry{hdr: hdr}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case d.Type()&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			if hdr.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case d.Type().IsRegular():
			hdr.Typeflag = tar.TypeReg
			if e.data, err = os.ReadFile(p); err != nil {
				return err
			}
			hdr.Size = int64(len(e.data))
		default:
			return nil
		}
		es = append(es, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", root, err)
	}
	return es, nil
}

// parents returns the directory entries of prefix ("usr/local/go"): "usr/",
// "usr/local/", "usr/local/go/".
func parents(prefix string) []entry {
	var es []entry
	parts := strings.Split(prefix, "/")
	for i := range parts {
		es = append(es, entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: strings.Join(parts[:i+1], "/") + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}})
	}
	return es
}

// tarBody writes es as a tar stream without its end-of-archive marker, so
// that more entries can follow it.
func tarBody(es []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", e.hdr.Name, err)
		}
		if len(e.data) > 0 {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("tar write %s: %w", e.hdr.Name, err)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return nil, fmt.Errorf("tar flush: %w", err)
	}
	return buf.Bytes(), nil
}

// tarTail is the last part of a layer's tar: one small file whose content
// makes the layer new, and the end-of-archive marker.
func tarTail(name string, content []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// compress compresses b as one gzip member (level 6, as gzip -6) or one
// zstd frame (the encoder's default level, zstd -3's equivalent). Members
// and frames concatenate: a layer is its body's compressed bytes followed
// by those of its tail.
func compress(format string, b []byte) ([]byte, error) {
	var buf bytes.Buffer
	var zw io.WriteCloser
	var err error
	switch format {
	case "gzip":
		zw, err = gzip.NewWriterLevel(&buf, 6)
	case "zstd":
		zw, err = zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault))
	default:
		err = fmt.Errorf("unknown compression %q", format)
	}
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
