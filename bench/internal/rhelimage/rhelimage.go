// Package rhelimage builds the small RHEL-like images the per-job and
// start-up benchmarks index (bench/jobpath, bench/startup): one layer of a
// real rpm database, a RHEL 9 os-release and incompressible filler, each
// made new by a file of its own.
package rhelimage

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

// DefaultRPMDB is the rpm database of the images, from the module root.
const DefaultRPMDB = "testdata/fixtures/rpm/preflight_sqlite_rpmdb.sqlite"

// DefaultFiller is the incompressible bytes of a layer by default.
const DefaultFiller = 512 << 10

const osRelease = `NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
`

// Flags declares a command's -rpmdb and -filler flags, read by Source.
func Flags() (rpmdb *string, filler *int) {
	return flag.String("rpmdb", DefaultRPMDB, "rpm database of the images (var/lib/rpm/rpmdb.sqlite)"),
		flag.Int("filler", DefaultFiller, "bytes of incompressible data in an image's layer")
}

// Source makes the layers of new images: the same files in each, and one
// of its own.
type Source struct {
	files map[string][]byte
}

// NewSource reads the rpm database at rpmdbPath and draws filler bytes.
func NewSource(rpmdbPath string, filler int) (*Source, error) {
	rpmdb, err := os.ReadFile(rpmdbPath)
	if err != nil {
		return nil, fmt.Errorf("rpm database (run from the module root, or -rpmdb): %w", err)
	}
	fill := make([]byte, filler)
	rand.Read(fill)
	return &Source{files: map[string][]byte{
		"etc/os-release": []byte(osRelease), "var/lib/rpm/rpmdb.sqlite": rpmdb, "opt/app/data.bin": fill,
	}}, nil
}

// Layer returns the gzipped layer of image i, new in every call (its own
// file holds i and the time).
func (s *Source) Layer(i int64) (v1.Layer, error) {
	files := map[string][]byte{"etc/bench-id": fmt.Appendf(nil, "%d %d\n", i, time.Now().UnixNano())}
	for k, v := range s.files {
		files[k] = v
	}
	return devregistry.LayerFromFiles(files)
}
