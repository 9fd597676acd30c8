package scan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/stevedore-dev/stevedore/internal/pgtest"
	"github.com/stevedore-dev/stevedore/pkg/devregistry"
	"github.com/stevedore-dev/stevedore/pkg/index"
	"github.com/stevedore-dev/stevedore/pkg/node"
	"github.com/stevedore-dev/stevedore/pkg/scan"
)

// `stevedore scan` in process: the native API's asynchronous index and its
// report endpoint, a summary and the JSON report with Stevedore's fields.
func TestScanInProcess(t *testing.T) {
	reg := devregistry.NewTestServer(t)
	l, err := devregistry.LayerFromFiles(map[string][]byte{
		"etc/os-release":      []byte("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian 12\"\n"),
		"var/lib/dpkg/status": []byte("Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref("scan/app:1")
	if _, err := devregistry.PushLayers(context.Background(), ref, []v1.Layer{l}...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		json bool
		want string
	}{
		{"summary", false, "libc6"},
		{"json", true, `"scanner_state"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := scan.Run(context.Background(), scan.Options{
				Node:    node.Config{DatabaseURL: pgtest.URL(t), Workers: 1},
				JSON:    tc.json,
				Timeout: time.Minute,
				Logger:  slog.New(slog.DiscardHandler),
			}, []string{ref}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Fatalf("output lacks %q:\n%s", tc.want, out.String())
			}
			if tc.json {
				var r index.Report
				if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.State != index.StateIndexFinished || len(r.Packages) != 1 {
					t.Fatalf("report: %v %+v", err, r)
				}
			}
		})
	}
}
