package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
)

// The alpine:3.10 layer (trivy's alpine-310.tar.gz, Apache-2.0), read plain,
// gzip- and zstd-compressed, gives the same Contents; the digest is checked
// against the compressed bytes.
func TestReadCompressions(t *testing.T) {
	plain := alpineLayer(t)
	wantInstalled := memberOf(t, plain, "lib/apk/db/installed")
	wantOSRelease := memberOf(t, plain, "etc/os-release")
	if !bytes.Contains(wantOSRelease, []byte("VERSION_ID=3.10.4")) {
		t.Fatalf("fixture: unexpected os-release %q", wantOSRelease)
	}

	tests := []struct {
		name string
		blob []byte
	}{
		{"plain", plain},
		{"gzip", gzipBytes(t, plain)},
		{"zstd", zstdBytes(t, plain)},
	}
	var first []([]fileView)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apk := exactly("apk", "lib/apk/db/installed")
			osr := exactly("os-release", "etc/os-release", "usr/lib/os-release")
			none := exactly("none")
			c := mustRead(t, tt.blob, []scanner.Scanner{apk, osr, none}, Options{})

			if c.Digest != sha256Digest(tt.blob) {
				t.Errorf("Digest = %s", c.Digest)
			}
			if c.CompressedBytes != int64(len(tt.blob)) {
				t.Errorf("CompressedBytes = %d, want %d", c.CompressedBytes, len(tt.blob))
			}
			if c.UncompressedBytes != int64(len(plain)) {
				t.Errorf("UncompressedBytes = %d, want %d", c.UncompressedBytes, len(plain))
			}
			got := [][]fileView{viewFiles(t, c.Files[0]), viewFiles(t, c.Files[1]), viewFiles(t, c.Files[2])}
			want := [][]fileView{
				{{"lib/apk/db/installed", int64(len(wantInstalled)), string(wantInstalled)}},
				{{"etc/os-release", int64(len(wantOSRelease)), string(wantOSRelease)}},
				nil,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Files = %+v\nwant %+v", got, want)
			}
			if len(c.Whiteouts)+len(c.OpaqueDirs)+len(c.Warnings) != 0 {
				t.Errorf("unexpected whiteouts %q, opaque %q, warnings %q", c.Whiteouts, c.OpaqueDirs, c.Warnings)
			}
			// Match sees every regular file (70 in this layer), nothing else.
			if n := len(none.asked); n != 70 {
				t.Errorf("Match called %d times, want 70 (the layer's regular files)", n)
			}
			if first == nil {
				first = got
			} else if !reflect.DeepEqual(first, got) {
				t.Errorf("%s differs from plain", tt.name)
			}
		})
	}
}

func TestReadSHA512(t *testing.T) {
	blob := gzipBytes(t, readFixture(t, "layers/trivy_walker_test.tar"))
	c, err := Read(context.Background(), bytes.NewReader(blob), sha512Digest(blob), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := Read(context.Background(), bytes.NewReader(blob), sha512Digest(append([]byte{1}, blob...)), nil, Options{}); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
}

func TestReadInvalidDigest(t *testing.T) {
	_, err := Read(context.Background(), strings.NewReader(""), "md5:abc", nil, Options{})
	if err == nil || errors.Is(err, ErrBadLayer) {
		t.Fatalf("err = %v, want an argument error", err)
	}
}

// badLayerCase is a blob that is not a layer, and what Read must say of it.
type badLayerCase struct {
	name     string
	blob     []byte
	want     report.Digest // default: the digest of blob
	opts     Options
	mismatch bool
	msg      []string // substrings of the message
	is       []error
}

// badLayerCases are TestReadBadLayer's blobs, from a real alpine layer.
func badLayerCases(t *testing.T) []badLayerCase {
	plain := alpineLayer(t)
	gz := gzipBytes(t, plain)
	zs := zstdBytes(t, plain)
	flipped := func(b []byte, at int) []byte {
		b = slices.Clone(b)
		b[at] ^= 0x01
		return b
	}
	garbage := make([]byte, 4096)
	rand.NewChaCha8([32]byte{1}).Read(garbage)
	garbage[0] = 'x' // not a compression magic

	return []badLayerCase{
		{
			name:     "gzip byte flipped",
			blob:     flipped(gz, len(gz)/2),
			want:     sha256Digest(gz),
			mismatch: true,
			msg:      []string{"digest mismatch: expected " + string(sha256Digest(gz)), "got sha256:"},
		},
		{
			name:     "plain byte flipped in a skipped file",
			blob:     flipped(plain, len(plain)/2),
			want:     sha256Digest(plain),
			mismatch: true,
			msg:      []string{"digest mismatch"},
		},
		{
			name:     "gzip truncated, served for the full blob",
			blob:     gz[:len(gz)/3],
			want:     sha256Digest(gz),
			mismatch: true,
			msg:      []string{"digest mismatch", "gzip: unexpected EOF after"},
		},
		{
			name: "gzip truncated, the blob as published",
			blob: gz[:len(gz)/3],
			msg:  []string{"bad layer: gzip: unexpected EOF after", "bytes of the blob, in tar entry"},
			is:   []error{io.ErrUnexpectedEOF},
		},
		{
			name: "gzip header truncated",
			blob: gz[:5],
			msg:  []string{"gzip: unexpected EOF after 5 bytes"},
		},
		{
			name: "zstd truncated",
			blob: zs[:len(zs)/2],
			msg:  []string{"bad layer: zstd: "},
		},
		{
			name: "plain tar truncated",
			blob: plain[:len(plain)/2+100],
			msg:  []string{"bad layer: tar entry", "unexpected EOF (the tar stream is truncated)"},
		},
		{
			name: "garbage",
			blob: garbage,
			msg:  []string{"bad layer: tar entry 1: archive/tar: invalid tar header"},
		},
		{
			name: "gzip of garbage",
			blob: gzipBytes(t, garbage),
			msg:  []string{"bad layer: tar entry 1: archive/tar: invalid tar header"},
		},
		{
			name: "xz",
			blob: []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2, 3},
			msg:  []string{"bad layer: xz: compression not supported"},
		},
		{
			name: "too many entries",
			blob: plain,
			opts: Options{MaxEntries: 10},
			msg:  []string{"bad layer: tar entry 11", "more than the limit of 10 tar entries"},
		},
	}
}

// Content errors: the error wraps ErrBadLayer (and ErrDigestMismatch when the
// bytes are not the expected ones), never comes with Contents, and says what
// failed.
func TestReadBadLayer(t *testing.T) {
	tests := badLayerCases(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = sha256Digest(tt.blob)
			}
			c, err := Read(context.Background(), bytes.NewReader(tt.blob), want, []scanner.Scanner{everything()}, tt.opts)
			if c != nil {
				c.Close()
				t.Fatal("Contents returned with an error")
			}
			t.Log(err)
			if !errors.Is(err, ErrBadLayer) {
				t.Fatalf("err = %v, want ErrBadLayer", err)
			}
			if got := errors.Is(err, ErrDigestMismatch); got != tt.mismatch {
				t.Errorf("errors.Is(err, ErrDigestMismatch) = %v, want %v (err: %v)", got, tt.mismatch, err)
			}
			if errors.Is(err, ErrRead) {
				t.Errorf("errors.Is(err, ErrRead): %v", err)
			}
			if !strings.HasPrefix(err.Error(), "layer "+string(want)+": ") {
				t.Errorf("message does not name the layer: %v", err)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("message %q lacks %q", err, m)
				}
			}
			for _, e := range tt.is {
				if !errors.Is(err, e) {
					t.Errorf("err does not wrap %v: %v", e, err)
				}
			}
		})
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

var errNetwork = errors.New("connection reset by peer")

// Failures of the reader and of the context are transient: not ErrBadLayer.
func TestReadTransient(t *testing.T) {
	plain := alpineLayer(t)
	gz := gzipBytes(t, plain)

	t.Run("reader fails mid-stream", func(t *testing.T) {
		for _, blob := range [][]byte{plain, gz} {
			r := &failingReader{r: bytes.NewReader(blob[:len(blob)/2]), err: errNetwork}
			c, err := Read(context.Background(), r, sha256Digest(blob), []scanner.Scanner{everything()}, Options{})
			if c != nil {
				t.Fatal("Contents returned with an error")
			}
			if !errors.Is(err, ErrRead) || !errors.Is(err, errNetwork) || errors.Is(err, ErrBadLayer) {
				t.Fatalf("err = %v, want ErrRead wrapping the reader's error and not ErrBadLayer", err)
			}
		}
	})
	t.Run("reader fails after the tar", func(t *testing.T) {
		// The tar ends cleanly; the error comes while draining.
		r := &failingReader{r: bytes.NewReader(plain), err: errNetwork}
		_, err := Read(context.Background(), r, sha256Digest(plain), nil, Options{})
		if !errors.Is(err, ErrRead) || !errors.Is(err, errNetwork) || errors.Is(err, ErrBadLayer) {
			t.Fatalf("err = %v, want ErrRead", err)
		}
	})
	t.Run("canceled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c, err := Read(ctx, bytes.NewReader(gz), sha256Digest(gz), nil, Options{})
		checkCanceled(t, c, err)
	})
	t.Run("canceled between entries", func(t *testing.T) {
		err := readCanceledInWalk(t, gz, false, Options{})
		if !strings.Contains(err.Error(), "etc/os-release") {
			t.Errorf("message does not say where: %v", err)
		}
	})
}

// Whiteouts and opaque directories from real whiteout test layers.
//
// Fixtures: layers/claircore_whiteout*.layer from quay/claircore
// whiteout/testdata at 0f12d7bc346d (Apache-2.0); layers/trivy_walker_test.tar
// from aquasecurity/trivy pkg/fanal/walker/testdata/test.tar at dc3c56eed58a
// (Apache-2.0).
func TestReadWhiteouts(t *testing.T) {
	tests := []struct {
		fixture   string
		whiteouts []string
		opaque    []string
		files     []string // regular files offered to Match
	}{
		{"layers/claircore_whiteout.layer", []string{"etc/profile"}, nil, nil},
		{"layers/claircore_whiteout_advanced.layer", []string{"a/a_file.txt", "a_root_file.txt", "b"}, nil, nil},
		{"layers/claircore_whiteout_opaque.layer", nil, []string{"a"}, []string{"b/not.a.wh..wh..opq"}},
		{"layers/trivy_walker_test.tar", []string{"foo/foo"}, []string{"etc"}, []string{"app/myweb/index.html", "baz", "vendor/bar"}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.fixture), func(t *testing.T) {
			all := everything()
			c := mustRead(t, readFixture(t, tt.fixture), []scanner.Scanner{all}, Options{})
			if !slices.Equal(c.Whiteouts, tt.whiteouts) {
				t.Errorf("Whiteouts = %q, want %q", c.Whiteouts, tt.whiteouts)
			}
			if !slices.Equal(c.OpaqueDirs, tt.opaque) {
				t.Errorf("OpaqueDirs = %q, want %q", c.OpaqueDirs, tt.opaque)
			}
			if !slices.Equal(all.asked, tt.files) {
				t.Errorf("Match asked about %q, want %q", all.asked, tt.files)
			}
			var got []string
			for _, f := range c.Files[0] {
				got = append(got, f.Path())
			}
			if !slices.Equal(got, tt.files) {
				t.Errorf("Files = %q, want %q", got, tt.files)
			}
		})
	}
}

// A root opaque directory and AUFS metadata entries.
func TestReadWhiteoutEdges(t *testing.T) {
	blob := makeTar(t,
		entry{name: "./.wh..wh..opq"},
		entry{name: ".wh..wh.plnk/", typ: tar.TypeDir},
		entry{name: ".wh..wh.aufs"},
		entry{name: "/x/.wh.y"},
		entry{name: "x/.wh."},
		entry{name: "x/.wh.."},
		entry{name: "x/.wh..."},
	)
	c := mustRead(t, blob, nil, Options{})
	if !slices.Equal(c.OpaqueDirs, []string{"."}) || !slices.Equal(c.Whiteouts, []string{"x/y"}) {
		t.Errorf("OpaqueDirs = %q, Whiteouts = %q", c.OpaqueDirs, c.Whiteouts)
	}
	if len(c.Warnings) != 3 || !strings.Contains(c.Warnings[2], `tar entry 7 ("x/.wh..."): whiteout of ".." is not a file name; ignored`) {
		t.Errorf("Warnings = %q", c.Warnings)
	}
}

// Real layers with odd members: a non-UTF-8 name, a layer with only "./",
// two concatenated tars, a dangling symlink.
//
// Fixtures: layers/claircore_tarfs_*.tar (quay/claircore pkg/tarfs/testdata)
// and layers/claircore_dangling_symlink.tar (rpm/testdata/dangling_symlink),
// at 0f12d7bc346d (Apache-2.0).
func TestReadOddLayers(t *testing.T) {
	tests := []struct {
		fixture  string
		files    []string
		warnings []string
	}{
		// A name that is not UTF-8 is skipped with a warning: Postgres could
		// not store it.
		{"layers/claircore_tarfs_bad_name.tar", nil, []string{`tar entry 1 ("./` + strings.Repeat("_", 100) + `bad\xfdname"): name is not valid UTF-8; skipped`}},
		{"layers/claircore_tarfs_oddlayer.tar", nil, nil},
		// The first archive has no end-of-archive marker, so the stream is
		// one tar; the second "./var/" entry replaces nothing that matters.
		{"layers/claircore_tarfs_concat.tar", []string{"run/logs/log.txt", "var/run/console/algo.txt"}, nil},
		// Symlinks are not offered to scanners.
		{"layers/claircore_dangling_symlink.tar", []string{"tar_creation/algo.txt"}, nil},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.fixture), func(t *testing.T) {
			all := everything()
			c := mustRead(t, readFixture(t, tt.fixture), []scanner.Scanner{all}, Options{})
			if !slices.Equal(all.asked, tt.files) {
				t.Errorf("Match asked about %q, want %q", all.asked, tt.files)
			}
			if !slices.Equal(c.Warnings, tt.warnings) {
				t.Errorf("Warnings = %q, want %q", c.Warnings, tt.warnings)
			}
		})
	}
}

// Entry names are cleaned before Match; names escaping the root are skipped
// with a warning.
func TestReadPathNormalization(t *testing.T) {
	tests := []struct {
		name     string
		entry    string
		want     string // "" when skipped
		warnings int
	}{
		{"dot slash", "./etc/os-release", "etc/os-release", 0},
		{"absolute", "/etc/os-release", "etc/os-release", 0},
		{"both", "/./etc/os-release", "etc/os-release", 0},
		{"double dot slash", "././etc/os-release", "etc/os-release", 0},
		{"double slash", "etc//os-release", "etc/os-release", 0},
		{"dot dot inside", "etc/x/../os-release", "etc/os-release", 0},
		{"escaping", "../etc/os-release", "", 1},
		{"escaping absolute", "/../etc/os-release", "", 1},
		{"escaping inside", "etc/../../os-release", "", 1},
		{"dotdot alone", "..", "", 1},
	}
	// The body is a real os-release (claircore's alpine-3.10 fixture).
	body := string(readFixture(t, "osrelease/claircore_alpine-3.10_os-release"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := everything()
			c := mustRead(t, makeTar(t, entry{name: tt.entry, body: body}), []scanner.Scanner{all}, Options{})
			var got string
			if len(c.Files[0]) == 1 {
				got = c.Files[0][0].Path()
				if b := readAll(t, c.Files[0][0]); string(b) != body {
					t.Errorf("body = %q", b)
				}
			}
			if got != tt.want {
				t.Errorf("path = %q, want %q", got, tt.want)
			}
			if len(c.Warnings) != tt.warnings {
				t.Errorf("Warnings = %q, want %d", c.Warnings, tt.warnings)
			}
			if tt.warnings > 0 && !strings.Contains(c.Warnings[0], "escapes the layer root") {
				t.Errorf("warning = %q", c.Warnings[0])
			}
		})
	}
}

// hardlinkCase is a layer with hardlinks, the scanners that ask for files and what they must be given.
type hardlinkCase struct {
	name     string
	entries  []entry
	scanners func() []*testScanner
	want     [][]fileView
	warnings []string
}

// hardlinkCases are TestReadHardlink's layers, with alpine's os-release as the linked content.
func hardlinkCases(t *testing.T) []hardlinkCase {
	// Real file contents: claircore's alpine and debian os-release fixtures.
	alp := string(readFixture(t, "osrelease/claircore_alpine-3.10_os-release"))
	return []hardlinkCase{
		{
			name: "link and target both matched",
			entries: []entry{
				{name: "usr/lib/os-release", body: alp},
				{name: "etc/os-release", typ: tar.TypeLink, linkname: "usr/lib/os-release"},
			},
			scanners: func() []*testScanner { return []*testScanner{exactly("os", "usr/lib/os-release", "etc/os-release")} },
			want: [][]fileView{{
				{"usr/lib/os-release", int64(len(alp)), alp},
				{"etc/os-release", int64(len(alp)), alp},
			}},
		},
		{
			name: "target kept for another scanner, link name normalized",
			entries: []entry{
				{name: "./usr/lib/os-release", body: alp},
				{name: "./etc/os-release", typ: tar.TypeLink, linkname: "/usr/lib/os-release"},
			},
			scanners: func() []*testScanner {
				return []*testScanner{exactly("a", "usr/lib/os-release"), exactly("b", "etc/os-release")}
			},
			want: [][]fileView{
				{{"usr/lib/os-release", int64(len(alp)), alp}},
				{{"etc/os-release", int64(len(alp)), alp}},
			},
		},
		{
			name: "link to a link",
			entries: []entry{
				{name: "a", body: alp},
				{name: "b", typ: tar.TypeLink, linkname: "a"},
				{name: "c", typ: tar.TypeLink, linkname: "b"},
			},
			scanners: func() []*testScanner { return []*testScanner{exactly("a", "a"), exactly("c", "c")} },
			want: [][]fileView{
				{{"a", int64(len(alp)), alp}},
				{{"c", int64(len(alp)), alp}},
			},
		},
		{
			name: "target not kept",
			entries: []entry{
				{name: "usr/lib/os-release", body: alp},
				{name: "etc/os-release", typ: tar.TypeLink, linkname: "usr/lib/os-release"},
			},
			scanners: func() []*testScanner { return []*testScanner{exactly("os", "etc/os-release")} },
			want:     [][]fileView{nil},
			warnings: []string{`tar entry 2 ("etc/os-release"): hardlink to "usr/lib/os-release", whose content was not kept`},
		},
		{
			name: "target escapes",
			entries: []entry{
				{name: "etc/os-release", typ: tar.TypeLink, linkname: "../x"},
			},
			scanners: func() []*testScanner { return []*testScanner{exactly("os", "etc/os-release")} },
			want:     [][]fileView{nil},
			warnings: []string{`hardlink target "../x" escapes the layer root`},
		},
		{
			name: "a later entry replaces a kept file",
			entries: []entry{
				{name: "etc/os-release", body: "old"},
				{name: "etc/os-release", body: alp},
				{name: "usr/lib/os-release", body: "gone"},
				{name: "usr/lib/os-release", typ: tar.TypeSymlink, linkname: "../../etc/os-release"},
			},
			scanners: func() []*testScanner { return []*testScanner{exactly("os", "etc/os-release", "usr/lib/os-release")} },
			want:     [][]fileView{{{"etc/os-release", int64(len(alp)), alp}}},
		},
	}
}

// A hardlink resolves to the content of a file kept earlier in the layer.
func TestReadHardlink(t *testing.T) {
	tests := hardlinkCases(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := tt.scanners()
			ss := make([]scanner.Scanner, len(ts))
			for i, s := range ts {
				ss[i] = s
			}
			c := mustRead(t, makeTar(t, tt.entries...), ss, Options{})
			var got [][]fileView
			for _, fs := range c.Files {
				got = append(got, viewFiles(t, fs))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Files = %+v\nwant %+v", got, tt.want)
			}
			if len(c.Warnings) != len(tt.warnings) {
				t.Fatalf("Warnings = %q, want %q", c.Warnings, tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(c.Warnings[i], w) {
					t.Errorf("warning %q lacks %q", c.Warnings[i], w)
				}
			}
		})
	}
}

// A matched file over MaxInMemory is spooled to TempDir; Open works more than
// once; Close removes the temp file; a file over MaxFileSize is skipped.
func TestReadSpool(t *testing.T) {
	plain := alpineLayer(t)
	blob := gzipBytes(t, plain)
	installed := memberOf(t, plain, "lib/apk/db/installed") // 11226 bytes
	osRelease := memberOf(t, plain, "etc/os-release")       // 164 bytes
	scripts := memberOf(t, plain, "lib/apk/db/scripts.tar") // 9728 bytes

	tmp := t.TempDir()
	ss := []scanner.Scanner{exactly("apk", "lib/apk/db/installed", "lib/apk/db/scripts.tar"), exactly("os", "etc/os-release")}
	c, err := Read(context.Background(), bytes.NewReader(blob), sha256Digest(blob), ss, Options{
		MaxInMemory: 1024,
		MaxFileSize: 10 * 1024, // installed is larger: skipped
		TempDir:     tmp,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := [][]fileView{viewFiles(t, c.Files[0]), viewFiles(t, c.Files[1])}
	want := [][]fileView{
		{{"lib/apk/db/scripts.tar", int64(len(scripts)), string(scripts)}},
		{{"etc/os-release", int64(len(osRelease)), string(osRelease)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Files = %v", got)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `("lib/apk/db/installed"): 11226 bytes, more than the limit of 10240; skipped`) {
		t.Errorf("Warnings = %q", c.Warnings)
	}
	_ = installed
	spooled, _ := filepath.Glob(filepath.Join(tmp, "*"))
	if len(spooled) != 1 {
		t.Fatalf("temp files = %q, want 1 (scripts.tar)", spooled)
	}
	// A second Open reads the same bytes.
	if b := readAll(t, c.Files[0][0]); !bytes.Equal(b, scripts) {
		t.Error("second Open differs")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) != 0 {
		t.Errorf("Close left %q", left)
	}
	if _, err := c.Files[0][0].Open(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Open after Close: %v", err)
	}
	if _, err := c.Files[1][0].Open(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Open after Close (memory): %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// The total kept in memory is bounded too; on error, spooled files are
// removed.
func TestReadSpoolTotalAndCleanup(t *testing.T) {
	plain := alpineLayer(t)
	tmp := t.TempDir()
	all := everything()
	c := mustRead(t, plain, []scanner.Scanner{all}, Options{MaxTotalInMemory: 64 << 10, TempDir: tmp})
	spooled, _ := filepath.Glob(filepath.Join(tmp, "*"))
	if len(spooled) == 0 {
		t.Fatal("nothing spooled past MaxTotalInMemory")
	}
	for _, f := range c.Files[0] {
		if want := memberOf(t, plain, f.Path()); !bytes.Equal(readAll(t, f), want) {
			t.Errorf("%s differs", f.Path())
		}
	}
	c.Close()

	// Same layer, truncated: the files spooled before the error are removed.
	bad := plain[:len(plain)/2+100]
	_, err := Read(context.Background(), bytes.NewReader(bad), sha256Digest(bad), []scanner.Scanner{all}, Options{MaxInMemory: 1, TempDir: tmp})
	if !errors.Is(err, ErrBadLayer) {
		t.Fatalf("err = %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) != 0 {
		t.Errorf("temp files left after an error: %q", left)
	}
}

// Unmatched files are streamed past, not buffered: reading a layer with a
// 96 MiB file that no scanner wants allocates far less than 96 MiB.
func TestReadUnmatchedNotBuffered(t *testing.T) {
	const big = 96 << 20
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		tw.WriteHeader(&tar.Header{Name: "big.bin", Typeflag: tar.TypeReg, Size: big, Mode: 0o644})
		chunk := make([]byte, 1<<20)
		for i := 0; i < big/len(chunk); i++ {
			tw.Write(chunk)
		}
		tw.WriteHeader(&tar.Header{Name: "etc/os-release", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644})
		tw.Write([]byte("x=1"))
		pw.CloseWithError(tw.Close())
	}()
	// The digest is unknown up front: expect exactly a mismatch, after the
	// whole stream was read.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := exactly("os", "etc/os-release")
	_, err := Read(context.Background(), pr, sha256Digest(nil), []scanner.Scanner{s}, Options{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "bytes)") {
		t.Errorf("err = %v", err)
	}
	if !slices.Equal(s.asked, []string{"big.bin", "etc/os-release"}) {
		t.Errorf("asked %q", s.asked)
	}
	// The generator goroutine allocates ~1 MiB; the reader its buffers.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("allocated %d bytes reading past a %d-byte unmatched file", alloc, big)
	}
}

// Warnings are capped, with a count of the rest.
func TestReadWarningsCapped(t *testing.T) {
	var es []entry
	for i := range 150 {
		es = append(es, entry{name: fmt.Sprintf("../escape%d", i), body: "x"})
	}
	c := mustRead(t, makeTar(t, es...), []scanner.Scanner{everything()}, Options{})
	if len(c.Warnings) != maxWarnings+1 || c.Warnings[maxWarnings] != "50 more warnings not shown" {
		t.Errorf("%d warnings, last %q", len(c.Warnings), c.Warnings[len(c.Warnings)-1])
	}
}
