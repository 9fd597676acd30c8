package e2e_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/logbuf"
	"github.com/stevedore-dev/stevedore/report"
)

// blobServer serves raw blobs at /blobs/<name>, for manifests whose layers
// are not in a registry (Clair manifests may point anywhere).
type blobServer struct {
	mu    sync.Mutex
	blobs map[string][]byte
	srv   *httptest.Server
}

func newBlobServer(t *testing.T) *blobServer {
	b := &blobServer{blobs: map[string][]byte{}}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		data, ok := b.blobs[strings.TrimPrefix(r.URL.Path, "/blobs/")]
		b.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// layer serves data and returns a layer entry claiming digest claim (empty:
// data's true digest).
func (b *blobServer) layer(name string, data []byte, claim string) *report.Layer {
	b.mu.Lock()
	b.blobs[name] = data
	b.mu.Unlock()
	if claim == "" {
		claim = fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	}
	return &report.Layer{Hash: report.Digest(claim), URI: b.srv.URL + "/blobs/" + name}
}

func gz(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

func manifestOf(ls ...*report.Layer) *report.Manifest {
	h := sha256.New()
	for _, l := range ls {
		io.WriteString(h, string(l.Hash))
	}
	return &report.Manifest{Hash: report.Digest(fmt.Sprintf("sha256:%x", h.Sum(nil))), Layers: ls}
}

func TestBadRequestsGetClearErrors(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(1, true))
	d64 := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		want                            string
	}{
		{"malformed json", "POST", "/indexer/api/v1/index_report", "application/json", `{"hash": "sha256:` + d64, 400, "invalid JSON"},
		{"empty body", "POST", "/indexer/api/v1/index_report", "application/json", ``, 400, "empty"},
		{"wrong type", "POST", "/indexer/api/v1/index_report", "application/json", `{"hash": 5}`, 400, `field "hash"`},
		{"bad digest", "POST", "/indexer/api/v1/index_report", "application/json", `{"hash":"sha256:zz","layers":[]}`, 400, "manifest hash"},
		{"no layers", "POST", "/indexer/api/v1/index_report", "application/json", `{"hash":"sha256:` + d64 + `","layers":[]}`, 400, "no layers"},
		{"bad layer uri", "POST", "/indexer/api/v1/index_report", "application/json", `{"hash":"sha256:` + d64 + `","layers":[{"hash":"sha256:` + d64 + `","uri":"ftp://x"}]}`, 400, "layers[0].uri"},
		{"malformed layer uri", "POST", "/indexer/api/v1/index_report", "application/json", `{"hash":"sha256:` + d64 + `","layers":[{"hash":"sha256:` + d64 + `","uri":"https://u:pw@r egistry/x"}]}`, 400, "layers[0].uri: not a valid URI"},
		{"control character in a layer uri", "POST", "/indexer/api/v1/index_report", "application/json", `{"hash":"sha256:` + d64 + `","layers":[{"hash":"sha256:` + d64 + `","uri":"https://registry/x\u0000y"}]}`, 400, "layers[0].uri: control character"},
		{"CR LF in a layer header", "POST", "/indexer/api/v1/index_report", "application/json", `{"hash":"sha256:` + d64 + `","layers":[{"hash":"sha256:` + d64 + `","uri":"https://registry/x","headers":{"Authorization":["Bearer x\r\nX-Evil: 1"]}}]}`, 400, `layers[0].headers["Authorization"][0]`},
		{"not json", "POST", "/indexer/api/v1/index_report", "text/plain", `hello`, 415, "Content-Type"},
		{"too large", "POST", "/indexer/api/v1/index_report", "application/json", `{"hash":"` + strings.Repeat("a", 5<<20) + `"}`, 413, "larger than"},
		{"unknown digest", "GET", "/indexer/api/v1/index_report/sha256:" + d64, "", ``, 404, "no index report"},
		{"malformed digest", "GET", "/indexer/api/v1/index_report/sha256:123", "", ``, 400, "invalid digest"},
		{"reference missing", "POST", "/api/v1/index", "application/json", `{}`, 400, `"reference": required`},
		{"reference malformed", "POST", "/api/v1/index", "application/json", `{"reference":"UPPER/Case::"}`, 400, `"reference"`},
		{"reference unknown", "POST", "/api/v1/index", "application/json", `{"reference":"` + h.reg.Ref("nope:1") + `"}`, 404, "nope"},
		{"bad platform", "POST", "/api/v1/index", "application/json", `{"reference":"` + h.reg.Ref("nope:1") + `","platform":"a/b/c/d/e"}`, 400, "platform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, e := h.send(tc.method, tc.path, tc.ctype, tc.body)
			if status != tc.status || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("HTTP %d %q, want %d with %q", status, e.Message, tc.status, tc.want)
			}
		})
	}
}

func TestBadLayersFailTheirReportAndTheWorkerGoesOn(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(1, true))
	blobs := newBlobServer(t)
	good, err := devregistry.TarFromFiles(map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("a")})
	if err != nil {
		t.Fatal(err)
	}
	goodGz := gz(t, good)
	corruptStatus, err := devregistry.TarFromFiles(map[string][]byte{"var/lib/dpkg/status": []byte("Package: broken\nStatus: install ok installed\nArchitecture: amd64\n\n")})
	if err != nil {
		t.Fatal(err)
	}
	otherDigest := "sha256:" + strings.Repeat("b", 64)
	for _, tc := range []struct {
		name  string
		layer *report.Layer
		want  string
	}{
		{"digest mismatch", blobs.layer("mismatch", goodGz, otherDigest), "digest mismatch"},
		{"truncated gzip", blobs.layer("truncated", goodGz[:len(goodGz)/2], ""), "unexpected EOF"},
		{"not a layer", blobs.layer("garbage", []byte("this is not a tar file at all, not even close......................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................"), ""), "layer"},
		{"corrupt status file", blobs.layer("corrupt-status", gz(t, corruptStatus), ""), "var/lib/dpkg/status"},
		{"missing blob", &report.Layer{Hash: report.Digest(otherDigest), URI: blobs.srv.URL + "/blobs/absent"}, "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := manifestOf(tc.layer)
			r := h.indexWait(t, m)
			if r.State != report.StateIndexError || !strings.Contains(r.Err, tc.want) {
				t.Fatalf("state %s err %q, want IndexError with %q", r.State, r.Err, tc.want)
			}
			if r.Success {
				t.Fatal("success on an error report")
			}
		})
	}
	// The same worker still indexes a good manifest.
	m := manifestOf(blobs.layer("good", goodGz, ""))
	if r := h.indexWait(t, m); r.State != report.StateIndexFinished || len(r.Packages) != 1 {
		t.Fatalf("good manifest after bad ones: %s %q", r.State, r.Err)
	}
}

// Files whose names are not UTF-8 (Postgres refuses them in text columns,
// SQLSTATE 22021) are skipped with a warning; the image indexes with the
// rest, on the first run.
func TestNonUTF8FileNamesAreSkippedWithAWarning(t *testing.T) {
	h := newHarness(t)
	logs := &logbuf.Buffer{}
	cfg := h.config(1, true)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	h.start(cfg)
	m := h.push("utf8:1", map[string][]byte{
		"etc/os-release":                                              osRelease("debian", "12"),
		"var/lib/dpkg/status":                                         dpkgStatus("kept"),
		"usr/lib/node_modules/\xc3\x28/package.json":                  []byte(`{"name":"bad","version":"1.0.0"}`),
		"usr/lib/node_modules/good/package.json":                      []byte(`{"name":"good","version":"2.0.0"}`),
		"usr/lib/python3/site-packages/b\xffd-1.0.dist-info/METADATA": []byte("Metadata-Version: 2.1\nName: bad\nVersion: 1.0\n\n"),
		"app/\xff.jar":                                                []byte("not a jar"),
	})
	r := h.indexWait(t, m)
	if r.State != report.StateIndexFinished {
		t.Fatalf("state %s, err %q; want IndexFinished", r.State, r.Err)
	}
	var names []string
	for _, p := range r.Packages {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"good", "kept"}) {
		t.Fatalf("packages %q, want good and kept", names)
	}
	if runs, _ := h.runs(m.Hash); runs != 1 {
		t.Fatalf("%d runs, want 1 (no retry)", runs)
	}
	for _, name := range []string{`\\xc3(`, `b\\xffd-1.0.dist-info`, `app/\\xff.jar`} {
		if !strings.Contains(logs.String(), name) || !strings.Contains(logs.String(), "not valid UTF-8") {
			t.Errorf("no warning naming %s in the log:\n%s", name, logs.String())
		}
	}
}
