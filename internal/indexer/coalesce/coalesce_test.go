package coalesce

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/report"
)

// Fixtures used here (all from the corpus in testdata/fixtures; see its SOURCES.md):
//   - apk/trivy_alpine-310_installed, apk/trivy_alpine-311_installed:
//     aquasecurity/trivy at dc3c56eed58a (Apache-2.0), the apk databases of
//     alpine:3.10 and alpine:3.11.
//   - dpkg/claircore_debian-only.status, dpkg/claircore_postgresql.status:
//     quay/claircore dpkg/testdata at 0f12d7bc346d (Apache-2.0).
//   - dpkg/syft_status.d_libsqlite3-0, dpkg/syft_status.d_coreutils-relationships:
//     anchore/syft syft/pkg/cataloger/debian/testdata at bf82010f3c38
//     (Apache-2.0), distroless-style status.d files.
//   - osrelease/claircore_*_os-release: quay/claircore at 0f12d7bc346d.
//
// The parsers below are deliberately minimal: they turn real databases into
// the packages a scanner would report, to give the coalescer real data.

// readFixture returns the bytes of the corpus fixture rel (see
// internal/testing/fixtures); a missing fixture fails the test.
func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stanzas splits a deb822/apk-style file into key->value maps.
func stanzas(b []byte) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = map[string]string{}
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if ok {
			if _, dup := cur[k]; !dup {
				cur[k] = strings.TrimSpace(v)
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// dpkgPackages reads a dpkg status file as the packages of database db.
func dpkgPackages(t testing.TB, rel, db string) []*report.Package {
	t.Helper()
	var out []*report.Package
	for _, s := range stanzas(readFixture(t, rel)) {
		if s["Package"] == "" || (s["Status"] != "" && s["Status"] != "install ok installed") {
			continue
		}
		p := &report.Package{
			Name: s["Package"], Version: s["Version"], Arch: s["Architecture"],
			Kind: report.KindBinary, PackageDB: db,
		}
		src, srcVer := s["Package"], s["Version"]
		if v := s["Source"]; v != "" {
			name, ver, ok := strings.Cut(v, " (")
			src = name
			if ok {
				srcVer = strings.TrimSuffix(ver, ")")
			}
		}
		p.Source = &report.Package{Name: src, Version: srcVer, Kind: report.KindSource}
		out = append(out, p)
	}
	if len(out) == 0 {
		t.Fatalf("no packages in %s", rel)
	}
	return out
}

// apkPackages reads an apk installed database.
func apkPackages(t testing.TB, rel string) []*report.Package {
	t.Helper()
	var out []*report.Package
	for _, s := range stanzas(readFixture(t, rel)) {
		if s["P"] == "" || s["V"] == "" {
			continue
		}
		p := &report.Package{Name: s["P"], Version: s["V"], Arch: s["A"], Kind: report.KindBinary, PackageDB: "lib/apk/db/installed"}
		if o := s["o"]; o != "" {
			p.Source = &report.Package{Name: o, Version: s["V"], Kind: report.KindSource}
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		t.Fatalf("no packages in %s", rel)
	}
	return out
}

// osRelease reads an os-release file as a distribution.
func osRelease(t testing.TB, rel string) *report.Distribution {
	t.Helper()
	kv := map[string]string{}
	for _, line := range strings.Split(string(readFixture(t, rel)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = strings.Trim(v, `"`)
		}
	}
	return &report.Distribution{
		DID: kv["ID"], Name: kv["NAME"], Version: kv["VERSION"], VersionID: kv["VERSION_ID"],
		VersionCodeName: kv["VERSION_CODENAME"], PrettyName: kv["PRETTY_NAME"],
	}
}

func concat(ps ...[]*report.Package) []*report.Package {
	var out []*report.Package
	for _, p := range ps {
		out = append(out, p...)
	}
	return out
}

// digest is a stand-in layer digest.
func digest(i int) report.Digest {
	s := sha256.Sum256([]byte(fmt.Sprintf("layer %d", i)))
	return report.Digest("sha256:" + hex.EncodeToString(s[:]))
}

// numbered sets the layers' digests to digest(0), digest(1), ...
func numbered(ls ...Layer) []Layer {
	for i := range ls {
		ls[i].Digest = digest(i)
	}
	return ls
}

// summary renders a report's packages as sorted lines
// "name version db=<db> in=<layer index>", for comparison.
func summary(t *testing.T, r *report.Report, n int) []string {
	t.Helper()
	layerOf := map[report.Digest]int{}
	for i := 0; i < n; i++ {
		layerOf[digest(i)] = i
	}
	var out []string
	for id, p := range r.Packages {
		if p.ID != id {
			t.Errorf("package %s has id %q", id, p.ID)
		}
		envs := r.Environments[id]
		if len(envs) == 0 {
			t.Errorf("package %s (%s) has no environment", id, p.Name)
		}
		for _, e := range envs {
			out = append(out, fmt.Sprintf("%s %s db=%s in=%d", p.Name, p.Version, e.PackageDB, layerOf[e.IntroducedIn]))
		}
	}
	if len(r.Environments) != len(r.Packages) {
		t.Errorf("%d environments for %d packages", len(r.Environments), len(r.Packages))
	}
	slices.Sort(out)
	return out
}

// lines renders packages as summary lines with the given db and layer.
func lines(ps []*report.Package, in int) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s %s db=%s in=%d", p.Name, p.Version, p.PackageDB, in))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sorted(groups ...[]string) []string {
	out := concat2(groups...)
	slices.Sort(out)
	return out
}

func concat2(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func TestCoalescePackages(t *testing.T) {
	f := loadCoalesceFixtures(t)
	for _, tt := range slices.Concat(dbReplacementCases(f), introducedInCases(f)) {
		t.Run(tt.name, func(t *testing.T) {
			r := Coalesce(report.Digest("sha256:"+strings.Repeat("a", 64)), tt.layers)
			if r.State != report.StateIndexFinished || !r.Success {
				t.Errorf("state %s, success %v", r.State, r.Success)
			}
			got := summary(t, r, len(tt.layers))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// coalesceCase is a stack of layers and the summary of its coalesced
// report.
type coalesceCase struct {
	name   string
	layers []Layer
	want   []string
}

// coalesceFixtures are the packages of the corpus's package databases.
type coalesceFixtures struct {
	keyring, postgres, alpine310, alpine311, sqlite, coreutils, keyringD []*report.Package
	// alpineKept and alpineChanged are the packages of alpine 3.11 that
	// kept or changed their version since 3.10.
	alpineKept, alpineChanged []*report.Package
}

// loadCoalesceFixtures reads the packages of the corpus's databases.
func loadCoalesceFixtures(t *testing.T) coalesceFixtures {
	t.Helper()
	const status = "var/lib/dpkg/status"
	var f coalesceFixtures
	f.keyring = dpkgPackages(t, "dpkg/claircore_debian-only.status", status)
	f.postgres = dpkgPackages(t, "dpkg/claircore_postgresql.status", status)
	f.alpine310 = apkPackages(t, "apk/trivy_alpine-310_installed")
	f.alpine311 = apkPackages(t, "apk/trivy_alpine-311_installed")
	f.sqlite = dpkgPackages(t, "dpkg/syft_status.d_libsqlite3-0", "var/lib/dpkg/status.d/libsqlite3-0")
	f.coreutils = dpkgPackages(t, "dpkg/syft_status.d_coreutils-relationships", "var/lib/dpkg/status.d/coreutils")
	f.keyringD = dpkgPackages(t, "dpkg/claircore_debian-only.status", "var/lib/dpkg/status.d/debian-archive-keyring")

	// The alpine 3.10 -> 3.11 upgrade: two packages kept their version.
	for _, p := range f.alpine311 {
		if slices.ContainsFunc(f.alpine310, func(q *report.Package) bool { return q.Name == p.Name && q.Version == p.Version }) {
			f.alpineKept = append(f.alpineKept, p)
		} else {
			f.alpineChanged = append(f.alpineChanged, p)
		}
	}
	if len(f.alpineKept) != 2 || len(f.alpineChanged) != 12 {
		t.Fatalf("fixture: %d kept, %d changed between alpine 3.10 and 3.11", len(f.alpineKept), len(f.alpineChanged))
	}
	return f
}

// dbReplacementCases replace, delete, hide or keep a package database in a
// higher layer.
func dbReplacementCases(f coalesceFixtures) []coalesceCase {
	const status = "var/lib/dpkg/status"
	return []coalesceCase{
		{
			name:   "single layer",
			layers: numbered(Layer{Packages: f.alpine310}),
			want:   lines(f.alpine310, 0),
		},
		{
			name:   "db replaced in a higher layer (apk upgrade 3.10 -> 3.11)",
			layers: numbered(Layer{Packages: f.alpine310}, Layer{Packages: f.alpine311}),
			want:   sorted(lines(f.alpineKept, 0), lines(f.alpineChanged, 1)),
		},
		{
			name:   "db deleted by a whiteout",
			layers: numbered(Layer{Packages: concat(f.keyring, f.postgres)}, Layer{Whiteouts: []string{status}}),
			want:   nil,
		},
		{
			name:   "db rewritten empty in a higher layer hides the lower copy",
			layers: numbered(Layer{Packages: f.keyring}, Layer{PackageDBs: []string{status}}),
			want:   nil,
		},
		{
			name:   "an empty copy between two full ones breaks the introduced-in run",
			layers: numbered(Layer{Packages: f.keyring}, Layer{PackageDBs: []string{status}}, Layer{Packages: f.keyring, PackageDBs: []string{status}}),
			want:   lines(f.keyring, 2),
		},
		{
			name:   "a layer without the db does not hide it",
			layers: numbered(Layer{Packages: f.keyring}, Layer{PackageDBs: []string{"lib/apk/db/installed"}}),
			want:   lines(f.keyring, 0),
		},
		{
			name:   "db deleted by a whiteout of a parent dir",
			layers: numbered(Layer{Packages: f.keyring}, Layer{Whiteouts: []string{"var/lib"}}),
			want:   nil,
		},
		{
			name:   "a whiteout of a sibling with a common prefix deletes nothing",
			layers: numbered(Layer{Packages: f.keyring}, Layer{Whiteouts: []string{"var/lib/dpkg/stat", "var/lib/dpkg/status-old"}}),
			want:   lines(f.keyring, 0),
		},
		{
			name:   "db deleted by an opaque root",
			layers: numbered(Layer{Packages: f.keyring}, Layer{OpaqueDirs: []string{"."}}),
			want:   nil,
		},
	}
}

// introducedInCases follow the layer each package was introduced in.
func introducedInCases(f coalesceFixtures) []coalesceCase {
	const status = "var/lib/dpkg/status"
	return []coalesceCase{
		{
			name: "db deleted by an opaque parent dir, then recreated higher up",
			layers: numbered(
				Layer{Packages: concat(f.keyring, f.postgres)},
				Layer{OpaqueDirs: []string{"var/lib/dpkg"}},
				Layer{},
				Layer{Packages: concat(f.keyring, f.postgres)},
			),
			// The deletion breaks the run: all introduced in layer 3.
			want: lines(concat(f.keyring, f.postgres), 3),
		},
		{
			name: "an opaque dir hides the lower db, not the layer's own",
			layers: numbered(
				Layer{Packages: concat(f.keyring, f.postgres)},
				Layer{OpaqueDirs: []string{"var/lib/dpkg"}, Packages: f.keyring},
			),
			want: lines(f.keyring, 1),
		},
		{
			name: "a whiteout in the layer that rewrites the db breaks the run",
			layers: numbered(
				Layer{Packages: f.keyring},
				Layer{Whiteouts: []string{status}, Packages: f.keyring},
			),
			want: lines(f.keyring, 1),
		},
		{
			name: "IntroducedIn across layers",
			layers: numbered(
				Layer{Packages: f.keyring},                     // 0: f.keyring installed
				Layer{Packages: f.alpine310},                   // 1: no dpkg db: does not break the run
				Layer{Packages: concat(f.keyring, f.postgres)}, // 2: postgresql added
				Layer{Whiteouts: []string{"etc/profile"}},      // 3: unrelated whiteout
				Layer{Packages: concat(f.postgres, f.keyring)}, // 4: rewritten, same content, other order
			),
			want: sorted(lines(f.keyring, 0), lines(f.postgres, 2), lines(f.alpine310, 1)),
		},
		{
			name: "a copy without the package breaks its run",
			layers: numbered(
				Layer{Packages: concat(f.keyring, f.postgres)}, // 0
				Layer{Packages: f.postgres},                    // 1: f.keyring removed
				Layer{Packages: concat(f.keyring, f.postgres)}, // 2: and installed again
			),
			want: sorted(lines(f.keyring, 2), lines(f.postgres, 0)),
		},
		{
			name: "distroless status.d files are separate dbs",
			layers: numbered(
				Layer{Packages: concat(f.sqlite, f.keyringD)},
				Layer{Packages: f.coreutils},
				Layer{Whiteouts: []string{"var/lib/dpkg/status.d/libsqlite3-0"}},
			),
			want: sorted(lines(f.keyringD, 0), lines(f.coreutils, 1)),
		},
		{
			name: "same package in two dbs",
			layers: numbered(
				Layer{Packages: f.keyring},
				Layer{Packages: f.keyringD},
			),
			want: sorted(lines(f.keyring, 0), lines(f.keyringD, 1)),
		},
	}
}

// One package id with an environment per database, sorted by database; the
// source package gets an id of its own.
func TestCoalesceSharedPackage(t *testing.T) {
	keyring := dpkgPackages(t, "dpkg/claircore_debian-only.status", "var/lib/dpkg/status")
	keyringD := dpkgPackages(t, "dpkg/claircore_debian-only.status", "var/lib/dpkg/status.d/debian-archive-keyring")
	r := Coalesce(report.Digest("sha256:"+strings.Repeat("b", 64)), numbered(Layer{Packages: keyringD}, Layer{Packages: keyring}))
	if len(r.Packages) != 1 {
		t.Fatalf("packages: %v", r.Packages)
	}
	for id, p := range r.Packages {
		envs := r.Environments[id]
		if len(envs) != 2 || envs[0].PackageDB != "var/lib/dpkg/status" || envs[0].IntroducedIn != digest(1) ||
			envs[1].PackageDB != "var/lib/dpkg/status.d/debian-archive-keyring" || envs[1].IntroducedIn != digest(0) {
			t.Errorf("environments: %+v %+v", envs[0], envs[1])
		}
		if p.Source == nil || p.Source.ID == "" || p.Source.ID == id || p.Source.Name != "debian-archive-keyring" {
			t.Errorf("source: %+v", p.Source)
		}
		if p.PackageDB != "" {
			t.Errorf("PackageDB on the report's package: %q", p.PackageDB)
		}
	}
	// The inputs are untouched.
	if keyring[0].ID != "" || keyring[0].Source.ID != "" || keyring[0].PackageDB != "var/lib/dpkg/status" {
		t.Errorf("input modified: %+v", keyring[0])
	}
}

func TestCoalesceDistribution(t *testing.T) {
	deb10 := osRelease(t, "osrelease/claircore_debian-10_os-release")
	deb11 := osRelease(t, "osrelease/claircore_debian-11_os-release")
	alp := osRelease(t, "osrelease/claircore_alpine-3.10_os-release")
	keyring := dpkgPackages(t, "dpkg/claircore_debian-only.status", "var/lib/dpkg/status")
	tests := []struct {
		name   string
		layers []Layer
		want   string // PrettyName, "" for none
	}{
		{"none", numbered(Layer{Packages: keyring}), ""},
		{"from the only layer", numbered(Layer{Distributions: []*report.Distribution{deb10}}), deb10.PrettyName},
		{
			"from the top layer",
			numbered(
				Layer{Distributions: []*report.Distribution{deb10}, DistributionPaths: []string{"etc/os-release"}},
				Layer{Packages: keyring},
				Layer{Distributions: []*report.Distribution{deb11}, DistributionPaths: []string{"etc/os-release"}},
				Layer{},
			),
			deb11.PrettyName,
		},
		{
			"the top one's file deleted: the lower file at another path shows",
			numbered(
				Layer{Distributions: []*report.Distribution{deb10}, DistributionPaths: []string{"usr/lib/os-release"}},
				Layer{Distributions: []*report.Distribution{deb11}, DistributionPaths: []string{"etc/os-release"}},
				Layer{Whiteouts: []string{"etc/os-release"}},
			),
			deb10.PrettyName,
		},
		{
			"the file deleted: none",
			numbered(
				Layer{Distributions: []*report.Distribution{alp}, DistributionPaths: []string{"etc/os-release"}},
				Layer{Distributions: []*report.Distribution{alp}, DistributionPaths: []string{"etc/os-release"}},
				Layer{OpaqueDirs: []string{"etc"}},
			),
			"",
		},
		{
			"no path: never hidden",
			numbered(
				Layer{Distributions: []*report.Distribution{alp}},
				Layer{OpaqueDirs: []string{"."}},
			),
			alp.PrettyName,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Coalesce(report.Digest("sha256:"+strings.Repeat("c", 64)), tt.layers)
			var got, id string
			for k, d := range r.Distributions {
				got, id = d.PrettyName, k
				if d.ID != k {
					t.Errorf("distribution %s has id %q", k, d.ID)
				}
			}
			if len(r.Distributions) > 1 {
				t.Errorf("%d distributions", len(r.Distributions))
			}
			if got != tt.want {
				t.Errorf("distribution %q, want %q", got, tt.want)
			}
			for _, envs := range r.Environments {
				for _, e := range envs {
					if e.DistributionID != id {
						t.Errorf("environment distribution %q, want %q", e.DistributionID, id)
					}
				}
			}
		})
	}
}

func TestCoalesceRepositories(t *testing.T) {
	main := &report.Repository{Name: "debian", URI: "http://deb.debian.org/debian", Key: "main"}
	security := &report.Repository{Name: "debian-security", URI: "http://security.debian.org/debian-security"}
	edge := &report.Repository{Name: "alpine-edge", URI: "https://dl-cdn.alpinelinux.org/alpine/edge/main"}
	tests := []struct {
		name   string
		layers []Layer
		want   []string
	}{
		{
			"union, deduplicated",
			numbered(
				Layer{Repositories: []*report.Repository{main, security}},
				Layer{Repositories: []*report.Repository{main}},
			),
			[]string{"debian", "debian-security"},
		},
		{
			"a path replaced and a path deleted",
			numbered(
				Layer{Repositories: []*report.Repository{main, security, edge}, RepositoryPaths: []string{"etc/apt/sources.list", "etc/apt/sources.list", "etc/apk/repositories"}},
				Layer{Repositories: []*report.Repository{main}, RepositoryPaths: []string{"etc/apt/sources.list"}},
				Layer{Whiteouts: []string{"etc/apk"}},
			),
			[]string{"debian"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Coalesce(report.Digest("sha256:"+strings.Repeat("d", 64)), tt.layers)
			var got []string
			for id, repo := range r.Repositories {
				if repo.ID != id {
					t.Errorf("repository %s has id %q", id, repo.ID)
				}
				got = append(got, repo.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("repositories %q, want %q", got, tt.want)
			}
		})
	}
}

// The same input gives byte-identical JSON, whatever the order of the
// packages inside each layer.
func TestCoalesceDeterministic(t *testing.T) {
	build := func(shuffle *rand.Rand) []Layer {
		ls := numbered(
			Layer{
				Packages:          concat(dpkgPackages(t, "dpkg/claircore_debian-only.status", "var/lib/dpkg/status"), apkPackages(t, "apk/trivy_alpine-310_installed")),
				Distributions:     []*report.Distribution{osRelease(t, "osrelease/claircore_debian-10_os-release")},
				DistributionPaths: []string{"etc/os-release"},
				Repositories:      []*report.Repository{{Name: "b"}, {Name: "a"}},
			},
			Layer{Packages: concat(
				dpkgPackages(t, "dpkg/claircore_postgresql.status", "var/lib/dpkg/status"),
				dpkgPackages(t, "dpkg/claircore_debian-only.status", "var/lib/dpkg/status"),
				dpkgPackages(t, "dpkg/syft_status.d_libsqlite3-0", "var/lib/dpkg/status.d/libsqlite3-0"),
				dpkgPackages(t, "dpkg/syft_status.d_coreutils-relationships", "var/lib/dpkg/status.d/coreutils"),
				dpkgPackages(t, "dpkg/claircore_debian-only.status", "var/lib/dpkg/status.d/keyring"),
				apkPackages(t, "apk/trivy_alpine-311_installed"),
			)},
		)
		if shuffle != nil {
			for _, l := range ls {
				shuffle.Shuffle(len(l.Packages), func(i, j int) { l.Packages[i], l.Packages[j] = l.Packages[j], l.Packages[i] })
			}
		}
		return ls
	}
	manifest := report.Digest("sha256:" + strings.Repeat("e", 64))
	first, err := json.Marshal(Coalesce(manifest, build(nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		again, err := json.Marshal(Coalesce(manifest, build(rand.New(rand.NewPCG(uint64(i), 1)))))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("run %d differs:\n%s\n%s", i, first, again)
		}
	}
	// Spot checks on the shape Clair's clients read.
	var r map[string]any
	if err := json.Unmarshal(first, &r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(first, []byte(`"repository_ids":[]`)) || bytes.Contains(first, []byte(`"repository_ids":null`)) {
		t.Error("repository_ids is not an empty list")
	}
	if !bytes.Contains(first, []byte(`"distribution_id":"1"`)) {
		t.Error("environments lack the distribution id")
	}
	if n := len(r["packages"].(map[string]any)); n != 1+3+1+9+14 {
		t.Errorf("%d packages", n)
	}
}
