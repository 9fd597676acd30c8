package dnf

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// small returns a fixture cut down to a few packages, in 512-byte pages, so
// that the fuzzing engine's mutations land in the rows and the schema
// rather than in free pages.
func small(f testing.TB, name string) []byte {
	names := "SELECT 1" // dnf4 has no pkg_name table
	if name == dnf5Fixture {
		names = "DELETE FROM pkg_name WHERE id NOT IN (SELECT name_id FROM rpm)"
	}
	return fixtures.DeriveSQLite(f, name,
		"DELETE FROM trans_item WHERE id > 3",
		"DELETE FROM rpm WHERE item_id > 3",
		"DELETE FROM item WHERE id > 3",
		"DROP TABLE IF EXISTS console_output; DROP TABLE IF EXISTS trans_with; DROP TABLE IF EXISTS item_replaced_by",
		"DROP TABLE comps_environment_group; DROP TABLE comps_environment; DROP TABLE comps_group_package; DROP TABLE comps_group",
		names,
		"PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM",
	)
}

// FuzzHistory writes any bytes to a file and reads it as a history
// database: a history or an error naming the file, never a panic, a hang
// or an unbounded allocation. Seeds: quay/claircore's dnf4 and dnf5 history
// databases (Apache-2.0, testdata/fixtures/rpm/claircore_dnf{4,5}_*.sqlite),
// whole and cut down to three packages.
func FuzzHistory(f *testing.F) {
	for _, name := range []string{dnf4Fixture, dnf5Fixture} {
		f.Add(small(f, name))
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := Read(context.Background(), scannertest.File(DNF5Path, data))
		if err != nil {
			if !strings.Contains(err.Error(), DNF5Path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if !slices.IsSorted(h.Installed) || len(slices.Compact(slices.Clone(h.Installed))) != len(h.Installed) {
			t.Fatalf("Installed not sorted and distinct: %q", h.Installed)
		}
		for _, id := range h.Installed {
			if id == "" {
				t.Fatal("empty repoid installed")
			}
		}
		for k, id := range h.Repoids {
			if id == "" || len(id) > MaxValueLen {
				t.Fatalf("%+v: repoid %q", k, id)
			}
		}
	})
}

// TestMutations runs what FuzzHistory checks on a fixed set of random
// mutations of its small seeds (bytes changed, 32-bit fields set to
// extremes, truncations), so that every test run covers corrupt databases
// even where the fuzzing engine is not run. Each read must end within 10
// seconds.
func TestMutations(t *testing.T) {
	seeds := [][]byte{small(t, dnf4Fixture), small(t, dnf5Fixture)}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 400 {
		b := slices.Clone(seeds[r.IntN(len(seeds))])
		switch r.IntN(3) {
		case 0:
			for range 1 + r.IntN(8) {
				b[r.IntN(len(b))] = byte(r.IntN(256))
			}
		case 1:
			at := r.IntN(len(b) - 4)
			v := []uint32{0, 1, 0x7fffffff, 0x80000000, 0xffffffff}[r.IntN(5)]
			binary.BigEndian.PutUint32(b[at:], v)
		case 2:
			b = b[:r.IntN(len(b))]
		}
		done := make(chan error, 1)
		go func() {
			_, err := Read(context.Background(), scannertest.File(DNF4Path, b))
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil && !strings.Contains(err.Error(), DNF4Path) {
				t.Fatalf("mutation %d: error %q does not name the file", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("mutation %d: read still running after 10s", i)
		}
	}
}
