// Package rhel holds the conventions that tie Red Hat's repository data
// together across scanners, the coalescer and the enrichers: the keys of the
// repositories each source reports, and the repository hint that names the
// dnf repository a package was installed from.
//
// Three sources name the repositories of a Red Hat image's packages:
//
//   - content manifests (root/buildinfo/content_manifests/*.json) list
//     content sets: Key ContentSetKey, Name the content set;
//   - dnf's history database records the repoid each package was installed
//     from: Key DNFRepoKey, Name the repoid;
//   - the Dockerfile Red Hat's build system leaves in root/buildinfo names
//     the image's component: Key ContainerNameKey, Name the component
//     (com.redhat.component label), resolved to content sets through the
//     container-name-to-repositories mapping.
//
// Enrichers turn the last two into ContentSetKey repositories (the key
// Clair's RHEL matcher reads) and give them CPEs from the repository-to-CPE
// mapping.
package rhel

import (
	"net/url"
)

// Repository keys.
const (
	// ContentSetKey marks a Red Hat content set (repository); its CPE
	// comes from the repository-to-CPE mapping. Clair's matchers know
	// repositories of this key.
	ContentSetKey = "rhel-cpe-repository"
	// DNFRepoKey marks a repository named by a dnf repoid read from dnf's
	// history. An enricher turns it into a ContentSetKey repository when
	// the repository-to-CPE mapping lists the repoid, and drops it
	// otherwise (a Fedora or CentOS repoid is not a Red Hat content set).
	DNFRepoKey = "rhel-dnf-repoid"
	// ContainerNameKey marks the component name of a Red Hat container
	// image, from the labels of its build Dockerfile. An enricher replaces
	// it with the content sets the container-name-to-repositories mapping
	// lists for it.
	ContainerNameKey = "rhel-container-name"
)

// IsRepositoryKey reports whether key is one of the keys above: the
// repositories that rpm packages of the layer they were found in are linked
// to.
func IsRepositoryKey(key string) bool {
	return key == ContentSetKey || key == DNFRepoKey || key == ContainerNameKey
}

// RepoidHint returns the repository hint naming dnf repoid id
// ("repoid=ID", URL-query encoded as Clair writes it).
func RepoidHint(id string) string {
	return url.Values{"repoid": {id}}.Encode()
}

// Repoid returns the dnf repoid named by a repository hint, or "" when the
// hint names none (or is not a query string).
func Repoid(hint string) string {
	v, err := url.ParseQuery(hint)
	if err != nil {
		return ""
	}
	return v.Get("repoid")
}
