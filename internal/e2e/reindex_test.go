package e2e_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/apk"
	"github.com/stevedore-dev/stevedore/scanner/dpkg"
	"github.com/stevedore-dev/stevedore/scanner/osrelease"
)

// counted wraps a real scanner: it counts Scan calls and can present another
// version (as a scanner upgrade would).
type counted struct {
	scanner.Scanner
	version, matchVersion string
	calls                 *atomic.Int64
}

func (c counted) Info() scanner.Info {
	in := c.Scanner.Info()
	if c.version != "" {
		in.Version = c.version
	}
	in.MatchVersion = c.matchVersion
	return in
}

func (c counted) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	c.calls.Add(1)
	return c.Scanner.Scan(ctx, files)
}

type scannerSet struct {
	list                []scanner.Scanner
	osr, dpkg, apkCalls *atomic.Int64
}

func newSet(dpkgVersion string) scannerSet {
	s := scannerSet{osr: new(atomic.Int64), dpkg: new(atomic.Int64), apkCalls: new(atomic.Int64)}
	s.list = []scanner.Scanner{
		counted{Scanner: osrelease.Scanner{}, calls: s.osr},
		counted{Scanner: dpkg.Scanner{}, version: dpkgVersion, matchVersion: "same-files", calls: s.dpkg},
		counted{Scanner: apk.Scanner{}, calls: s.apkCalls},
	}
	return s
}

func TestScannerUpgradeReindexesOnlyWhatChanged(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	dpkgV := dpkg.Scanner{}.Info().Version
	old := newSet(dpkgV)
	cfg := h.config(2, true)
	cfg.Scanners = old.list
	_, stopOld := h.startStoppable(cfg)

	oldState := app.State(old.list)
	imgs := indexUpgradeImages(t, h, oldState)
	stopOld()

	// The upgrade: dpkg has a new version that matches the same files.
	// Two replicas run the sweep; no client asks for anything.
	h.reg.Counter().Reset()
	upgradeAt := time.Now()
	next := newSet(dpkgV + "-next")
	newState := app.State(next.list)
	if newState == oldState {
		t.Fatal("the scanner sets have the same state")
	}
	for range 2 {
		cfg := h.config(2, true)
		cfg.Scanners = next.list
		cfg.SweepInterval = 100 * time.Millisecond
		h.start(cfg)
	}
	st := postgres.New(h.pool)
	waitFor(t, "every report re-indexed by the sweep", 60*time.Second, func() bool {
		for _, img := range imgs {
			r, err := st.Report(ctx, img.m.Hash)
			if err != nil || r.State != report.StateIndexFinished || r.ScannerState != newState {
				return false
			}
		}
		return true
	})
	checkReindexedOnce(t, h, st, imgs, upgradeAt)
	if n := next.dpkg.Load(); n != 5 {
		t.Errorf("the new dpkg scanned %d layers, want 5", n)
	}
	if a, b := next.osr.Load(), next.apkCalls.Load(); a != 0 || b != 0 {
		t.Errorf("unchanged scanners ran again: os-release %d, apk %d times", a, b)
	}
	t.Logf("re-index after the upgrade served %d layer bytes for 5 images", h.reg.Counter().BlobBytes())
}

// upgradeImage is an image of two layers: one with a dpkg database, one
// with nothing for dpkg.
type upgradeImage struct {
	m                *report.Manifest
	dpkgLayer, other report.Digest
}

// indexUpgradeImages pushes and indexes 5 images, and waits until each
// report is finished under oldState.
func indexUpgradeImages(t *testing.T, h *harness, oldState string) []upgradeImage {
	ctx := context.Background()
	var imgs []upgradeImage
	for i := range 5 {
		m := h.push(fmt.Sprintf("up%d:1", i),
			map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus(fmt.Sprintf("p%d", i))},
			map[string][]byte{fmt.Sprintf("srv/app%d", i): []byte("app")},
		)
		imgs = append(imgs, upgradeImage{m, m.Layers[0].Hash, m.Layers[1].Hash})
		if _, err := h.client.IndexManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, img := range imgs {
		if r := h.wait(img.m.Hash); r.State != report.StateIndexFinished || r.ScannerState != oldState {
			t.Fatalf("first index: %s %s", r.State, r.ScannerState)
		}
	}
	return imgs
}

// checkReindexedOnce checks that each image was re-indexed once, fetching
// only its dpkg layer.
func checkReindexedOnce(t *testing.T, h *harness, st *postgres.Store, imgs []upgradeImage, upgradeAt time.Time) {
	ctx := context.Background()
	for _, img := range imgs {
		r, _ := st.Report(ctx, img.m.Hash)
		if len(r.Packages) != 1 || len(r.Distributions) != 1 {
			t.Errorf("%s after re-index: %d packages, %d distributions", img.m.Hash, len(r.Packages), len(r.Distributions))
		}
		// Only the layer dpkg read is fetched again, once.
		if n := h.reg.Counter().BlobFetches(string(img.dpkgLayer)); n != 1 {
			t.Errorf("dpkg's layer fetched %d times, want 1", n)
		}
		if n := h.reg.Counter().BlobFetches(string(img.other)); n != 0 {
			t.Errorf("a layer with nothing for dpkg fetched %d times, want 0", n)
		}
		// Two sweeping replicas: one run per manifest.
		runs := h.count(`SELECT count(*) FROM report_log WHERE manifest_hash = $1 AND state = 'CheckManifest' AND fence > 0 AND at > $2`, string(img.m.Hash), upgradeAt)
		if runs != 1 {
			t.Errorf("%s re-indexed %d times, want 1", img.m.Hash, runs)
		}
	}
}
