package summary_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/pkg/index"
	"github.com/stevedore-dev/stevedore/pkg/summary"
)

func TestWrite(t *testing.T) {
	next := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	r := index.NewReport("sha256:"+index.Digest(strings.Repeat("a", 64)), index.StateIndexPartial)
	r.Attempt, r.NextRetry = 3, &next
	r.Partial = []index.PartialReason{{Scanner: "rhel-repository-cpe", Reason: "the mapping is not loaded"}}
	r.Distributions["1"] = &index.Distribution{ID: "1", DID: "rhel", VersionID: "9", PrettyName: "Red Hat Enterprise Linux 9"}
	r.Packages["2"] = &index.Package{ID: "2", Name: "bash", Version: "5.1", Arch: "x86_64", Source: &index.Package{Name: "bash", Version: "5.1"}}
	r.Packages["3"] = &index.Package{ID: "3", Name: "libgcc", Version: "11", Arch: "x86_64", Source: &index.Package{Name: "gcc", Version: "11"}}
	r.Environments["2"] = []*index.Environment{{PackageDB: "var/lib/rpm/rpmdb.sqlite"}}
	r.Environments["3"] = []*index.Environment{{PackageDB: "var/lib/rpm/rpmdb.sqlite"}}
	var b strings.Builder
	if err := summary.Write(&b, "registry/app:1", r, 1); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"State:         IndexPartial",
		"Missing:       rhel-repository-cpe: the mapping is not loaded",
		"Attempt:       3, next retry 2026-11-22T16:00:00Z",
		"Red Hat Enterprise Linux 9  [rhel 9]",
		"Packages:      2 (from 2 source packages)",
		"2 in var/lib/rpm/rpmdb.sqlite",
		"bash",
		"... and 1 more",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
