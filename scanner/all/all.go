// Package all lists the scanners Stevedore runs by default.
package all

import (
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/apk"
	"github.com/stevedore-dev/stevedore/scanner/composer"
	"github.com/stevedore-dev/stevedore/scanner/conda"
	"github.com/stevedore-dev/stevedore/scanner/dotnet"
	"github.com/stevedore-dev/stevedore/scanner/dpkg"
	"github.com/stevedore-dev/stevedore/scanner/gobinary"
	"github.com/stevedore-dev/stevedore/scanner/java"
	"github.com/stevedore-dev/stevedore/scanner/npm"
	"github.com/stevedore-dev/stevedore/scanner/osrelease"
	"github.com/stevedore-dev/stevedore/scanner/python"
	"github.com/stevedore-dev/stevedore/scanner/rheldockerfile"
	"github.com/stevedore-dev/stevedore/scanner/rhelrepo"
	"github.com/stevedore-dev/stevedore/scanner/rpm"
	"github.com/stevedore-dev/stevedore/scanner/ruby"
	"github.com/stevedore-dev/stevedore/scanner/runtime"
	"github.com/stevedore-dev/stevedore/scanner/rust"
)

// Default returns the default scanners in a stable order: os-release, dpkg,
// apk, rpm, then the language packages: python, java, gobinary, npm, ruby,
// the language runtimes (runtime), rust, dotnet, composer, conda, then the
// RHEL content manifests and build Dockerfiles. Each call returns a new slice.
func Default() []scanner.Scanner {
	return []scanner.Scanner{
		osrelease.Scanner{},
		dpkg.Scanner{},
		apk.Scanner{},
		rpm.Scanner{},
		python.Scanner{},
		java.Scanner{},
		gobinary.Scanner{},
		npm.Scanner{},
		ruby.Scanner{},
		runtime.Scanner{},
		rust.Scanner{},
		dotnet.Scanner{},
		composer.Scanner{},
		conda.Scanner{},
		rhelrepo.Scanner{},
		rheldockerfile.Scanner{},
	}
}
