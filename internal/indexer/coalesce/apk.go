package coalesce

import (
	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
)

// apkDistributions are the apk-based distributions whose os-release ID names
// their packages' PURL namespace. The apk scanner cannot tell them apart (the
// installed database does not say which distribution wrote it) and writes
// "alpine"; the image's distribution can.
var apkDistributions = map[string]bool{"alpine": true, "wolfi": true, "chainguard": true}

// apkPURLs gives the apk packages of r the PURL of the image's distribution
// (the one distID names, "" for none), as the PURL specification's apk type
// wants: namespace the os-release ID ("wolfi" in a Wolfi image, "chainguard"
// in a Chainguard one, "alpine" in Alpine), and a distro qualifier ID-VERSION_ID
// ("wolfi-20230201"; the ID alone without a VERSION_ID). An image whose
// distribution is not an apk-based one that apkDistributions lists, or has
// none, keeps the scanner's PURLs.
func apkPURLs(r *report.Report, distID string) {
	d := r.Distributions[distID]
	if d == nil || !apkDistributions[d.DID] {
		return
	}
	distro := d.DID
	if d.VersionID != "" {
		distro += "-" + d.VersionID
	}
	for _, p := range r.Packages {
		if p.Filepath != "" || p.PURL == "" {
			continue // a language package
		}
		u, err := packageurl.FromString(p.PURL)
		if err != nil || u.Type != packageurl.TypeApk {
			continue
		}
		u.Namespace = d.DID
		q := u.Qualifiers.Map()
		q["distro"] = distro
		u.Qualifiers = packageurl.QualifiersFromMap(q) // sorted by key
		p.PURL = u.ToString()
	}
}
