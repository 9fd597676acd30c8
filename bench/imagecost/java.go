package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// installJars downloads the Debian packages of Java libraries into dir
// and unpacks them (dir/root) when that does not exist yet, with apt-get
// download and dpkg-deb: real jars, as a Java image holds them.
func installJars(ctx context.Context, dir string, packages []string) (string, error) {
	root := filepath.Join(dir, "root")
	if _, err := os.Stat(root); err == nil {
		return root, nil
	}
	debs := filepath.Join(dir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"download"}, packages...)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = debs, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apt-get download in %s: %w", debs, err)
	}
	files, err := filepath.Glob(filepath.Join(debs, "*.deb"))
	if err != nil {
		return "", err
	}
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	for _, f := range files {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", f, tmp).CombinedOutput(); err != nil {
			return "", fmt.Errorf("dpkg-deb -x %s: %v: %s", f, err, out)
		}
	}
	return root, os.Rename(tmp, root)
}

// jarEntries returns the regular .jar files under root/usr/share/java as
// tar entries under prefix, in name order.
func jarEntries(root, prefix string) ([]entry, error) {
	all, err := readTree(filepath.Join(root, "usr", "share", "java"), prefix)
	if err != nil {
		return nil, err
	}
	var jars []entry
	for _, e := range all {
		if e.hdr.Typeflag == tar.TypeReg && strings.HasSuffix(e.hdr.Name, ".jar") {
			jars = append(jars, e)
		}
	}
	if len(jars) == 0 {
		return nil, fmt.Errorf("no jars under %s/usr/share/java", root)
	}
	return jars, nil
}

// fatJar builds a Spring Boot-style executable jar of jars: each one stored
// (not deflated) under BOOT-INF/lib/, as Spring Boot requires of nested
// jars, beside a manifest and a class of the application's own.
func fatJar(jars []entry) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, method uint16, data []byte) error {
		h := &zip.FileHeader{Name: name, Method: method, Modified: time.Unix(0, 0).UTC()}
		if method == zip.Store {
			h.CRC32, h.CompressedSize64, h.UncompressedSize64 = crc32.ChecksumIEEE(data), uint64(len(data)), uint64(len(data))
			w, err := zw.CreateRaw(h)
			if err != nil {
				return err
			}
			_, err = w.Write(data)
			return err
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	manifest := "Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.JarLauncher\r\nStart-Class: com.example.App\r\n" +
		"Implementation-Title: app\r\nImplementation-Version: 1.0.0\r\n\r\n"
	if err := add("META-INF/MANIFEST.MF", zip.Deflate, []byte(manifest)); err != nil {
		return nil, err
	}
	if err := add("BOOT-INF/classes/com/example/App.class", zip.Deflate, bytes.Repeat([]byte{0xca, 0xfe, 0xba, 0xbe}, 256)); err != nil {
		return nil, err
	}
	sorted := slices.Clone(jars)
	slices.SortFunc(sorted, func(a, b entry) int { return strings.Compare(a.hdr.Name, b.hdr.Name) })
	for _, j := range sorted {
		if err := add("BOOT-INF/lib/"+path.Base(j.hdr.Name), zip.Store, j.data); err != nil {
			return nil, fmt.Errorf("fat jar: %s: %w", j.hdr.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// javaSpecs are the Java images: the jars as a distribution installs them
// (one file each), and the same jars inside one Spring Boot-style jar.
func javaSpecs(root string) ([]imageSpec, error) {
	jars, err := jarEntries(root, "usr/share/java")
	if err != nil {
		return nil, err
	}
	fat, err := fatJar(jars)
	if err != nil {
		return nil, err
	}
	app := entry{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "app/app.jar", Mode: 0o644, Size: int64(len(fat)), ModTime: time.Unix(0, 0)}, data: fat}
	return []imageSpec{
		{name: fmt.Sprintf("java: %d jars, 1 gzip layer", len(jars)), layers: []layerSpec{{format: "gzip", entries: append(parents("usr/share/java"), jars...)}}},
		{name: "java: 1 fat jar of them, 1 gzip layer", layers: []layerSpec{{format: "gzip", entries: append(parents("app"), app)}}},
	}, nil
}
