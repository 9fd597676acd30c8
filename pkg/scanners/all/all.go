// Package all lists the scanners Stevedore runs by default.
package all

import (
	"github.com/stevedore-dev/stevedore/pkg/scanners"
	"github.com/stevedore-dev/stevedore/pkg/scanners/apk"
	"github.com/stevedore-dev/stevedore/pkg/scanners/dpkg"
	"github.com/stevedore-dev/stevedore/pkg/scanners/gobinary"
	"github.com/stevedore-dev/stevedore/pkg/scanners/java"
	"github.com/stevedore-dev/stevedore/pkg/scanners/npm"
	"github.com/stevedore-dev/stevedore/pkg/scanners/osrelease"
	"github.com/stevedore-dev/stevedore/pkg/scanners/python"
	"github.com/stevedore-dev/stevedore/pkg/scanners/rheldockerfile"
	"github.com/stevedore-dev/stevedore/pkg/scanners/rhelrepo"
	"github.com/stevedore-dev/stevedore/pkg/scanners/rpm"
	"github.com/stevedore-dev/stevedore/pkg/scanners/ruby"
)

// Default returns the default scanners in a stable order: os-release, dpkg,
// apk, rpm, then the language packages: python, java, gobinary, npm, ruby,
// then the RHEL content manifests and build Dockerfiles. Each call returns a
// new slice.
func Default() []scanners.Scanner {
	return []scanners.Scanner{
		osrelease.Scanner{},
		dpkg.Scanner{},
		apk.Scanner{},
		rpm.Scanner{},
		python.Scanner{},
		java.Scanner{},
		gobinary.Scanner{},
		npm.Scanner{},
		ruby.Scanner{},
		rhelrepo.Scanner{},
		rheldockerfile.Scanner{},
	}
}
