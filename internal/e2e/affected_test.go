package e2e_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/report"
)

// TestAffectedManifests indexes real Alpine 3.10 images through the
// pipeline and asks, as Clair's notifier does, which of them a musl
// advisory affects: the one with musl 1.1.22-r3 (and musl-utils from its
// source); not the one whose upper layer rewrote the package database
// without them (the report, with its
// layers coalesced, is what counts); and no longer the first once it is
// deleted.
func TestAffectedManifests(t *testing.T) {
	h := newHarness(t)
	h.start(h.config(1, true))
	installed := string(fixture(t, "apk/trivy_alpine-310_installed"))
	var withoutMusl []string
	for _, stanza := range strings.Split(installed, "\n\n") {
		// musl, and musl-utils, built from musl's source.
		if !strings.Contains(stanza, "P:musl\n") && !strings.Contains(stanza, "o:musl\n") {
			withoutMusl = append(withoutMusl, stanza)
		}
	}
	base := map[string][]byte{
		"etc/os-release":       fixture(t, "osrelease/claircore_alpine-3.10_os-release"),
		"lib/apk/db/installed": []byte(installed),
	}
	with := h.push("alpine/with:3.10", base)
	without := h.push("alpine/without:3.10", base, map[string][]byte{"lib/apk/db/installed": []byte(strings.Join(withoutMusl, "\n\n"))})
	h.indexAndWait(with)
	if r := h.indexAndWait(without); slices.ContainsFunc(mapValues(r.Packages), func(p *report.Package) bool { return p.Name == "musl" }) {
		t.Fatal("the upper layer's database still lists musl")
	}

	// CVE-2020-28928 as claircore's Alpine updater gives it (secdb v3.10
	// main: musl 1.1.22-r4).
	const body = `{"vulnerabilities": [{"id": "1", "updater": "alpine-main-v3.10-updater", "name": "CVE-2020-28928",
 "normalized_severity": "Unknown", "fixed_in_version": "1.1.22-r4", "arch_op": "equals",
 "package": {"id": "", "name": "musl", "version": "", "kind": "binary"},
 "distribution": {"id": "", "did": "alpine", "name": "Alpine Linux", "version_id": "3.10", "pretty_name": "Alpine Linux v3.10"}}]}`
	affected := func() map[string][]string {
		t.Helper()
		resp, err := http.Post(h.api.URL+"/indexer/api/v1/internal/affected_manifest/", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b.Bytes())
		}
		var ans struct {
			VulnerableManifests map[string][]string `json:"vulnerable_manifests"`
		}
		if err := json.Unmarshal(b.Bytes(), &ans); err != nil {
			t.Fatal(err)
		}
		return ans.VulnerableManifests
	}
	got := affected()
	if len(got) != 1 || !slices.Equal(got[string(with.Hash)], []string{"1"}) {
		t.Fatalf("affected %v, want only %s", got, with.Hash)
	}
	req, err := http.NewRequest(http.MethodDelete, h.api.URL+"/indexer/api/v1/index_report/"+string(with.Hash), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := affected(); len(got) != 0 {
		t.Fatalf("after the delete, affected %v, want none", got)
	}
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
