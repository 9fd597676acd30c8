package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/cli"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
	"github.com/stevedore-dev/stevedore/internal/testing/sbomcheck"
	"github.com/stevedore-dev/stevedore/report"
)

// pushApp pushes an image of two ecosystems (a Debian base with two
// packages, an npm package on top) and returns its reference.
func pushApp(t *testing.T) string {
	t.Helper()
	return cli.PushTwoEcosystems(t, devregistry.NewTestServer(t), "scan/app:1",
		"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n"+
			"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2\n\n")
}

// `stevedore scan` in process: the native API's asynchronous index and its
// report endpoint; the table grouped by ecosystem, the JSON report with
// Stevedore's fields.
func TestScanInProcess(t *testing.T) {
	ref := pushApp(t)
	for _, tc := range []struct {
		format string
		check  func(t *testing.T, out []byte)
	}{
		{"table", func(t *testing.T, out []byte) {
			s := string(out)
			for _, want := range []string{
				"Image:         " + ref,
				"Distribution:  Debian 12  [debian 12]",
				"Packages:      3: deb 2, npm 1",
				"NAME     VERSION   TYPE  LOCATION",
				"express  4.16.4    npm   app/node_modules/express/package.json",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("table lacks %q:\n%s", want, s)
				}
			}
			if i, j := strings.Index(s, "libc6"), strings.Index(s, "express"); i < 0 || j < i {
				t.Errorf("deb packages (2) should come before npm (1):\n%s", s)
			}
		}},
		{"json", func(t *testing.T, out []byte) {
			var r report.Report
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("json output does not parse: %v\n%s", err, out)
			}
			if r.State != report.StateIndexFinished || len(r.Packages) != 3 || r.ScannerState == "" {
				t.Fatalf("report: state %s, %d packages, scanner state %q", r.State, len(r.Packages), r.ScannerState)
			}
		}},
		{"spdx-json", func(t *testing.T, out []byte) {
			doc := sbomcheck.New(t).SPDX(t, out) // schema-valid and decodable
			names := map[string]bool{}
			for _, p := range doc.Packages {
				names[p.PackageName] = true
			}
			for _, want := range []string{"libc6", "express"} {
				if !names[want] {
					t.Errorf("SPDX document lacks package %s (has %v)", want, names)
				}
			}
			if !strings.Contains(doc.DocumentName, ref) {
				t.Errorf("SPDX document name %q does not name %s", doc.DocumentName, ref)
			}
		}},
		{"cyclonedx-json", func(t *testing.T, out []byte) {
			bom := sbomcheck.New(t).CycloneDX(t, out)
			names := map[string]bool{}
			for _, c := range *bom.Components {
				names[c.Name] = true
			}
			for _, want := range []string{"libc6", "express"} {
				if !names[want] {
					t.Errorf("CycloneDX BOM lacks component %s (has %v)", want, names)
				}
			}
		}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var out bytes.Buffer
			err := cli.Run(context.Background(), cli.Options{
				Node:    app.Config{DatabaseURL: pgtest.URL(t), Workers: 1},
				Format:  tc.format,
				Timeout: time.Minute,
				Logger:  slog.New(slog.DiscardHandler),
			}, []string{ref}, &out)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, out.Bytes())
		})
	}
}

func TestScanRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    cli.Options
		refs []string
		want string
	}{
		{"no reference", cli.Options{}, nil, "no image reference"},
		{"unknown format", cli.Options{Format: "xml"}, []string{"example.com/a:1"}, `format "xml": want one of cyclonedx-json, json, spdx-json, table`},
	} {
		err := cli.Run(context.Background(), tc.o, tc.refs, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

// On a terminal (a real pseudo-terminal) the status line shows layers and
// bytes while the scan runs, and is cleared before Run returns.
func TestProgressOnTerminal(t *testing.T) {
	ref := pushApp(t)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	var screen bytes.Buffer
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(&screen, ptmx) })
	p := cli.NewProgress(tty)
	if !p.Enabled() {
		t.Fatal("progress is off on a terminal")
	}
	var out bytes.Buffer
	err = cli.Run(context.Background(), cli.Options{
		Node:     app.Config{DatabaseURL: pgtest.URL(t), Workers: 1},
		Timeout:  time.Minute,
		Logger:   slog.New(slog.DiscardHandler),
		Progress: p,
	}, []string{ref}, &out)
	if err != nil {
		t.Fatal(err)
	}
	tty.Close()
	wg.Wait()
	s := screen.String()
	for _, want := range []string{"scanning " + ref, "layers: ", "scanned", "\r\x1b[K"} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal lacks %q:\n%q", want, s)
		}
	}
	if !strings.HasSuffix(s, "\r\x1b[K") {
		t.Errorf("the status line is not cleared at the end:\n%q", s)
	}
	// The last line drawn counts the image's two layers as scanned (the
	// counts are read from the fetcher, not from the clock).
	if !strings.Contains(s, "layers: 2 scanned, 0 fetching") {
		t.Errorf("no status line with both layers scanned:\n%q", s)
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Errorf("the status line reached the output:\n%q", out.String())
	}
}

// Not a terminal: nothing is drawn, and the log writer is the one given.
func TestProgressOffWhenNotATerminal(t *testing.T) {
	f, err := openNotTerminal(t)
	if err != nil {
		t.Fatal(err)
	}
	p := cli.NewProgress(f)
	if p.Enabled() {
		t.Fatal("progress is on for a regular file")
	}
	var b bytes.Buffer
	if w := p.LogWriter(&b); w != io.Writer(&b) {
		t.Error("the log writer is wrapped when there is no status line")
	}
}

func openNotTerminal(t *testing.T) (*os.File, error) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err == nil {
		t.Cleanup(func() { f.Close() })
	}
	return f, err
}

// A scan of an image whose report is stored and current answers from the
// store without starting a node (no queue: the embedded NATS server's start
// is never logged), with the same output as the scan that indexed it.
func TestScanOfIndexedImageStartsNoNode(t *testing.T) {
	ref := pushApp(t)
	dbURL := pgtest.URL(t)
	var outs [2]bytes.Buffer
	var logs [2]bytes.Buffer
	for i := range outs {
		err := cli.Run(context.Background(), cli.Options{
			Node:    app.Config{DatabaseURL: dbURL, Workers: 1},
			Format:  "json",
			Timeout: time.Minute,
			Logger:  slog.New(slog.NewTextHandler(&logs[i], nil)),
		}, []string{ref}, &outs[i])
		if err != nil {
			t.Fatalf("scan %d: %v", i+1, err)
		}
	}
	const started = "embedded NATS JetStream server started"
	for i, want := range []bool{true, false} {
		if got := strings.Contains(logs[i].String(), started); got != want {
			t.Errorf("scan %d: %q logged: %v, want %v", i+1, started, got, want)
		}
	}
	if outs[0].String() != outs[1].String() {
		t.Errorf("the second scan's output differs from the first's:\n%s\nvs.\n%s", outs[1].String(), outs[0].String())
	}
}
