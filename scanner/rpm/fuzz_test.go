package rpm

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// ndbWith returns a minimal NDB Packages.db holding blob as its one
// package: the 32-byte header, one page of slots, the blob at 4096.
func ndbWith(blob []byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, 4096+16+len(blob))
	le.PutUint32(b[0:], ndbHeaderMagic)
	le.PutUint32(b[12:], 1) // one slot page
	for s := 32; s < 4096; s += 16 {
		le.PutUint32(b[s:], ndbSlotMagic)
	}
	le.PutUint32(b[32+4:], 1)       // package index 1
	le.PutUint32(b[32+8:], 4096/16) // block offset, in 16-byte blocks
	le.PutUint32(b[32+12:], uint32((16+len(blob)+15)/16))
	le.PutUint32(b[4096:], ndbBlobMagic)
	le.PutUint32(b[4096+4:], 1)
	le.PutUint32(b[4096+12:], uint32(len(blob)))
	copy(b[4096+16:], blob)
	return b
}

// headerSeeds are real header blobs: quay/claircore's package.header and the
// first packages of go-rpmdb's SLE 15 NDB database (testdata/fixtures/rpm).
func headerSeeds(f testing.TB) [][]byte {
	raw := scannertest.ReadFixture(f, "rpm/claircore_package.header")
	seeds := [][]byte{raw}
	ndb := scannertest.ReadFixture(f, "rpm/go-rpmdb_sle15-bci_Packages.db")
	le := binary.LittleEndian
	for s := 32; s < 4096 && len(seeds) < 6; s += 16 {
		if le.Uint32(ndb[s+4:]) == 0 {
			continue
		}
		off := int(le.Uint32(ndb[s+8:])) * 16
		n := int(le.Uint32(ndb[off+12:]))
		seeds = append(seeds, ndb[off+16:off+16+n])
	}
	return seeds
}

// FuzzHeader feeds header blobs, wrapped in an NDB database, through the
// whole scanner: validateHeader, then go-rpmdb's header import and package
// building. Nothing may panic or hang; an error names the file; a header
// the scanner accepts yields one package with a name and a version.
func FuzzHeader(f *testing.F) {
	for _, s := range headerSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		verr := validateHeader(blob)
		res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("var/lib/rpm/Packages.db", ndbWith(blob))})
		if err != nil {
			if !strings.Contains(err.Error(), "var/lib/rpm/Packages.db") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if verr != nil {
			t.Fatalf("validateHeader refused the blob (%v) but the scan succeeded", verr)
		}
		for _, p := range res.Packages {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("package without name, version or PURL: %+v", p)
			}
		}
	})
}

// FuzzDatabase feeds whole files to the scanner as var/lib/rpm/Packages,
// seeded with the small BerkeleyDB fixtures (osv-scalibr, anchore/syft,
// go-rpmdb, openshift-preflight test data) and the start of the NDB one:
// any input gives packages or an error naming the file, never a panic, a
// hang or an unbounded allocation.
func FuzzDatabase(f *testing.F) {
	for _, name := range []string{"scalibr_Packages_epoch", "syft_redhat_Packages", "go-rpmdb_libuuid_Packages"} {
		b := scannertest.ReadFixture(f, "rpm/"+name)
		f.Add(b)
	}
	for _, s := range headerSeeds(f)[:2] {
		f.Add(ndbWith(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("var/lib/rpm/Packages", data)})
		if err != nil {
			if !strings.Contains(err.Error(), "var/lib/rpm/Packages") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, p := range res.Packages {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("package without name or version: %+v", p)
			}
		}
	})
}

// TestMutations runs what the fuzz targets check on a fixed set of random
// mutations of the same seeds (byte changes, truncations, duplicated runs),
// so that every test run covers corrupt headers and databases even where
// the fuzzing engine is not run. Each scan must end within 10 seconds.
func TestMutations(t *testing.T) {
	var seeds [][]byte
	for _, h := range headerSeeds(t) {
		seeds = append(seeds, ndbWith(h))
	}
	for _, name := range []string{"scalibr_Packages_epoch", "syft_redhat_Packages"} {
		b := scannertest.ReadFixture(t, "rpm/"+name)
		seeds = append(seeds, b)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 600 {
		b := append([]byte(nil), seeds[r.IntN(len(seeds))]...)
		switch r.IntN(4) {
		case 0: // a few random bytes
			for range 1 + r.IntN(8) {
				b[r.IntN(len(b))] = byte(r.IntN(256))
			}
		case 1: // a 32-bit field set to an extreme
			at := r.IntN(len(b) - 4)
			v := []uint32{0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffff0}[r.IntN(6)]
			binary.BigEndian.PutUint32(b[at:], v)
		case 2: // truncated
			b = b[:r.IntN(len(b))]
		case 3: // a run duplicated
			at, n := r.IntN(len(b)), r.IntN(512)
			if at+n > len(b) {
				n = len(b) - at
			}
			b = append(b[:at+n:at+n], b[at:]...)
		}
		done := make(chan error, 1)
		go func() {
			_, err := Scanner{}.Scan(context.Background(), []scanner.File{scannertest.File("var/lib/rpm/Packages", b)})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil && !strings.Contains(err.Error(), "var/lib/rpm/Packages") {
				t.Fatalf("mutation %d: error %q does not name the file", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("mutation %d: scan still running after 10s", i)
		}
	}
}
