package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/report"
)

func TestIndexesAnImageEndToEnd(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(2, true))
	m := h.push("app:1",
		map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("base-files", "libc6")},
		map[string][]byte{"var/lib/dpkg/status": dpkgStatus("base-files", "libc6", "curl")},
	)
	resp, err := h.client.IndexReference(context.Background(), h.reg.Ref("app:1"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Manifests) != 1 || !resp.Manifests[0].Queued {
		t.Fatalf("index response %+v", resp)
	}
	r := h.wait(resp.Manifests[0].Digest)
	if r.State != report.StateIndexFinished || !r.Success {
		t.Fatalf("state %s err %q", r.State, r.Err)
	}
	if len(r.Distributions) != 1 {
		t.Fatalf("distributions: %+v", r.Distributions)
	}
	for _, d := range r.Distributions {
		if d.DID != "debian" || d.VersionID != "12" {
			t.Fatalf("distribution %+v", d)
		}
	}
	names := []string{}
	for id, p := range r.Packages {
		names = append(names, p.Name)
		envs := r.Environments[id]
		if len(envs) != 1 || envs[0].PackageDB != "var/lib/dpkg/status" {
			t.Fatalf("environments of %s: %+v", p.Name, envs)
		}
		// curl came with the second layer, the others with the first.
		want := m.Layers[0].Hash
		if p.Name == "curl" {
			want = m.Layers[1].Hash
		}
		if envs[0].IntroducedIn != want {
			t.Errorf("%s introduced in %s, want %s", p.Name, envs[0].IntroducedIn, want)
		}
	}
	sort.Strings(names)
	if fmt.Sprint(names) != "[base-files curl libc6]" {
		t.Fatalf("packages %v", names)
	}
	// The API serves the same report.
	got, err := h.client.Report(context.Background(), r.Hash)
	if err != nil || got.State != report.StateIndexFinished || len(got.Packages) != 3 {
		t.Fatalf("GET report: %+v %v", got, err)
	}
}

func TestConcurrentDuplicateRequestsRunOneJob(t *testing.T) {
	h := newHarness(t)
	n := h.start(h.config(2, true))
	m := h.push("dup:1",
		map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("a", "b")},
		map[string][]byte{"usr/share/doc/x": []byte("x")},
	)
	body, _ := json.Marshal(m)
	checkConcurrentPosts(t, h, body)
	r := h.wait(m.Hash)
	if r.State != report.StateIndexFinished {
		t.Fatalf("state %s: %s", r.State, r.Err)
	}
	runs, finished := h.runs(m.Hash)
	if runs != 1 || finished != 1 {
		t.Fatalf("%d runs and %d final writes, want 1 and 1", runs, finished)
	}
	for _, l := range m.Layers {
		if got := h.reg.Counter().BlobFetches(string(l.Hash)); got != 1 {
			t.Errorf("layer %s fetched %d times, want 1", l.Hash, got)
		}
	}
	if d := deliveries(t, n.JS); d != 1 {
		t.Fatalf("%d job deliveries, want 1", d)
	}

	// Once the report is current, more requests queue nothing: 201 with the
	// report.
	for range 5 {
		resp, err := http.Post(h.api.URL+"/indexer/api/v1/index_report", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var got report.Report
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || got.State != report.StateIndexFinished {
			t.Fatalf("request after finish: HTTP %d state %s", resp.StatusCode, got.State)
		}
	}
	if runs, _ := h.runs(m.Hash); runs != 1 {
		t.Fatalf("%d runs after repeat requests, want 1", runs)
	}
}

// checkConcurrentPosts sends 50 blocking POSTs of body at once, as Clair's
// clients send them: each waits for the report and answers 201 with the
// same finished report.
func checkConcurrentPosts(t *testing.T, h *harness, body []byte) {
	var wg sync.WaitGroup
	codes := make([]int, 50)
	answers := make([][]byte, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(h.api.URL+"/indexer/api/v1/index_report", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			codes[i] = resp.StatusCode
			answers[i], _ = io.ReadAll(resp.Body)
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusCreated {
			t.Fatalf("request %d: HTTP %d, want 201: %s", i, c, answers[i])
		}
		var got report.Report
		if err := json.Unmarshal(answers[i], &got); err != nil || got.State != report.StateIndexFinished || len(got.Packages) != 2 {
			t.Fatalf("request %d: %v: %s", i, err, answers[i])
		}
		if !bytes.Equal(answers[i], answers[0]) {
			t.Fatalf("request %d answered another report:\n%s\nthan request 0:\n%s", i, answers[i], answers[0])
		}
	}
}

func TestThreeWorkersIndexEachManifestOnce(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(0, true)) // dispatcher only
	for range 3 {
		// Separate instances: each has its own Postgres pool and NATS
		// connection.
		h.start(h.config(2, false))
	}
	var ms []*report.Manifest
	for i := range 30 {
		ms = append(ms, h.push(fmt.Sprintf("img%d:1", i),
			map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus(fmt.Sprintf("pkg%d", i))},
			map[string][]byte{fmt.Sprintf("srv/%d", i): []byte(fmt.Sprint(i))},
		))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.client.IndexManifest(ctx, m); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, m := range ms {
		r := h.wait(m.Hash)
		if r.State != report.StateIndexFinished || len(r.Packages) != 1 {
			t.Fatalf("%s: state %s, %d packages, err %q", m.Hash, r.State, len(r.Packages), r.Err)
		}
		runs, finished := h.runs(m.Hash)
		if runs != 1 || finished != 1 {
			t.Errorf("%s: %d runs and %d final writes, want 1 and 1", m.Hash, runs, finished)
		}
		for _, l := range m.Layers {
			if got := h.reg.Counter().BlobFetches(string(l.Hash)); got != 1 {
				t.Errorf("layer %s fetched %d times, want 1", l.Hash, got)
			}
		}
	}
	// The work was shared: more than one lease holder wrote results.
	if n := h.count(`SELECT count(DISTINCT fence) FROM index_report WHERE state = 'IndexFinished'`); n != 30 {
		t.Fatalf("%d distinct fences for 30 reports", n)
	}
}

func TestIndexStateETag(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(1, true))
	resp, err := http.Get(h.api.URL + "/indexer/api/v1/index_state")
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ State string }
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || st.State == "" || etag != `"`+st.State+`"` {
		t.Fatalf("index_state: %d %q etag %q", resp.StatusCode, st.State, etag)
	}
	req, _ := http.NewRequest("GET", h.api.URL+"/indexer/api/v1/index_state", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match current: HTTP %d, want 304", resp.StatusCode)
	}
	m := h.push("etag:1", map[string][]byte{"etc/os-release": osRelease("alpine", "3.19.1")})
	body, _ := json.Marshal(m)
	req, _ = http.NewRequest("POST", h.api.URL+"/indexer/api/v1/index_report", bytes.NewReader(body))
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("POST with If-None-Match current: HTTP %d, want 412", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", h.api.URL+"/indexer/api/v1/index_report", bytes.NewReader(body))
	req.Header.Set("If-None-Match", `"some-older-state"`)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST with an old If-None-Match: HTTP %d, want 201", resp.StatusCode)
	}
	if r := h.wait(m.Hash); r.State != report.StateIndexFinished {
		t.Fatalf("state %s", r.State)
	}
	// DELETE removes it; a second DELETE is 204 too, as Clair answers.
	for i, want := range []int{http.StatusNoContent, http.StatusNoContent} {
		req, _ = http.NewRequest("DELETE", h.api.URL+"/indexer/api/v1/index_report/"+string(m.Hash), nil)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("DELETE %d: HTTP %d, want %d", i, resp.StatusCode, want)
		}
	}
	if n := h.count(`SELECT count(*) FROM manifest WHERE hash = $1`, string(m.Hash)); n != 0 {
		t.Fatalf("manifest row left after DELETE")
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPackageDatabaseEmptiedInAHigherLayer(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(1, true))
	m := h.push("emptied:1",
		map[string][]byte{"etc/os-release": osRelease("debian", "12"), "var/lib/dpkg/status": dpkgStatus("a", "b")},
		map[string][]byte{"var/lib/dpkg/status": {}},
	)
	r := h.indexWait(t, m)
	if r.State != report.StateIndexFinished || len(r.Packages) != 0 || len(r.Distributions) != 1 {
		t.Fatalf("state %s, %d packages, %d distributions: the emptied database should hide the lower one", r.State, len(r.Packages), len(r.Distributions))
	}
}
