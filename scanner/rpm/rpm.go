// Package rpm finds the packages installed by rpm, in any of its three
// database formats: BerkeleyDB (var/lib/rpm/Packages, RHEL/CentOS 5 to 8,
// Amazon Linux 2), NDB (Packages.db, SUSE) and SQLite (rpmdb.sqlite, Fedora
// 33+, RHEL 9+, Amazon Linux 2023, CBL-Mariner), under var/lib/rpm or
// usr/lib/sysimage/rpm. The databases are read with
// github.com/knqyf263/go-rpmdb (pure Go; SQLite through modernc.org/sqlite),
// after this package has checked the file's structure (see validate.go):
// no cgo, no rpm binary, no network. An rpmdb.sqlite is read with its
// write-ahead log (rpmdb.sqlite-wal) when the layer has one, and packages
// get the dnf repository they were installed from when the layer has dnf's
// history database (see scanner/internal/dnf).
package rpm

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	"github.com/package-url/packageurl-go"

	"github.com/stevedore-dev/stevedore/report"
	"github.com/stevedore-dev/stevedore/scanner"
	"github.com/stevedore-dev/stevedore/scanner/internal/dnf"
	"github.com/stevedore-dev/stevedore/scanner/internal/owned"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
)

// MaxFileSize is the largest database (and write-ahead log) Scan reads. The
// rpmdb of a large server install is a few hundred MiB in BerkeleyDB
// (sparse pages), far less in SQLite; the layer reader's own default limit
// is 256 MiB.
const MaxFileSize = 512 << 20

// dbDirs are the directories rpm keeps its database in; dbNames the file
// names of the three formats, walName that of the SQLite database's
// write-ahead log.
var (
	dbDirs  = []string{"var/lib/rpm/", "usr/lib/sysimage/rpm/"}
	dbNames = []string{"Packages", "Packages.db", "rpmdb.sqlite"}
)

const walName = "rpmdb.sqlite-wal"

// Scanner reports the packages rpm has installed.
//
// Every package but rpm's gpg-pubkey pseudo-packages (the imported signing
// keys, which rpm -qa lists among the packages but are not software) is a
// binary package with:
//   - Name, Arch (noarch included), PackageDB: the database's path in the
//     layer ("var/lib/rpm/Packages");
//   - Version: VERSION-RELEASE, preceded by "EPOCH:" when the epoch is
//     above 0, as Clair writes it ("1:0.0.1-rls");
//   - Module: "name:stream" of the package's modularity label (RHEL 8
//     modules), empty otherwise;
//   - Source: the source package named by SOURCERPM
//     ("util-linux-2.32.1-42.el8_8.src.rpm" gives util-linux
//     2.32.1-42.el8_8), with the binary package's epoch, since a source rpm's
//     file name carries none and both are built from one spec (as Trivy
//     does); none when SOURCERPM is missing or malformed;
//   - PURL: pkg:rpm/NAMESPACE/NAME@VERSION-RELEASE?arch=ARCH&epoch=EPOCH
//     (epoch only when above 0; the source package's has arch=src);
//   - RepositoryHint: rhel.RepoidHint(REPOID) ("repoid=rhel-9-for-x86_64-
//     baseos-rpms") when the layer has dnf's history database and it
//     records the package (same name, epoch, version, release and arch)
//     with a repoid; empty otherwise, and always on the source package.
//
// The history is dnf5's usr/lib/sysimage/libdnf5/transaction_history.sqlite,
// or dnf4's var/lib/dnf/history.sqlite when the layer has only that one; a
// package's repoid is the one of its latest install (see dnf.History). The
// history only adds hints: a history that cannot be read is a warning
// naming it, and the packages are reported without hints. It is not a
// package database: no package has it as PackageDB, and a layer with a
// history but no rpm database has no packages.
//
// An rpmdb.sqlite is read together with the rpmdb.sqlite-wal beside it in
// the same layer, if any: rpm uses SQLite's write-ahead logging, and a
// transaction committed but not yet checkpointed into the database file is
// only in the log. A log without its database in the layer is ignored.
//
// The PURL namespace is the distribution, which rpm does not record and the
// layer may not say (a later layer that installs packages rewrites the
// whole database but not os-release). It is taken from the database itself,
// so that every copy of it gives the same answer: the distribution's release
// package if one is installed (redhat-release* -> redhat, fedora-release*
// -> fedora, centos*-release -> centos, rocky-release -> rocky,
// almalinux-release -> almalinux, oraclelinux-release -> oracle,
// sles-release and sle*-release -> suse, openSUSE-release -> opensuse,
// mariner-release -> mariner, azurelinux-release -> azurelinux,
// photon-release -> photon, sl-release -> scientific; system-release from
// the vendor "Amazon Linux" -> amazon), else the most common known vendor
// among the packages ("Red Hat, Inc." -> redhat, "Fedora Project" ->
// fedora, "Amazon Linux" -> amazon, "SUSE LLC" -> suse, ...), else redhat.
//
// Result.OwnedFiles lists the files the packages own (from their headers'
// file lists) that a language scanner could also report (owned.Relevant,
// with rpm's file modes: only regular files count under bin directories and
// as archives).
//
// A file that is not an rpm database, is truncated or corrupt, or is over
// MaxFileSize is an error naming it. An SQLite file without a Packages table
// is an empty database (rpm creates the table on opening it).
//
// The zero value is ready to use.
type Scanner struct{}

var _ scanner.Scanner = Scanner{}

// Info identifies the scanner: "rpm", version "3", a package scanner, file
// matching version "2" (version 1 matched the databases only). Version 3
// records the owned files of the Rust, .NET, PHP, conda and zipped-egg
// scanners too (owned.Relevant).
func (Scanner) Info() scanner.Info {
	return scanner.Info{Name: "rpm", Version: "3", Kind: scanner.KindPackage, MatchVersion: "2"}
}

// Match reports whether path is Packages, Packages.db, rpmdb.sqlite or
// rpmdb.sqlite-wal in var/lib/rpm or usr/lib/sysimage/rpm, or one of dnf's
// history databases (dnf.DNF4Path, dnf.DNF5Path).
func (Scanner) Match(p string) bool {
	dir, name := path.Split(p)
	if slices.Contains(dbDirs, dir) && (slices.Contains(dbNames, name) || name == walName) {
		return true
	}
	return dnf.IsHistory(p)
}

// Scan reads each matched database, in path order, and returns its packages
// sorted by name, version and arch.
func (Scanner) Scan(ctx context.Context, files []scanner.File) (*scanner.Result, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b scanner.File) int { return strings.Compare(a.Path(), b.Path()) })
	var dbs, histories []scanner.File
	wals := map[string]scanner.File{} // by the path of their database
	for _, f := range files {
		dir, name := path.Split(f.Path())
		switch {
		case dnf.IsHistory(f.Path()):
			histories = append(histories, f)
		case slices.Contains(dbDirs, dir) && name == walName:
			wals[strings.TrimSuffix(f.Path(), "-wal")] = f
		default:
			dbs = append(dbs, f)
		}
	}
	res := &scanner.Result{}
	var repoids map[dnf.Key]string
	if h := dnf.Pick(histories); h != nil && len(dbs) > 0 {
		hist, err := dnf.Read(ctx, h)
		switch {
		case err == nil:
			repoids = hist.Repoids
		case ctx.Err() != nil:
			return nil, fmt.Errorf("rpm: %w", ctx.Err())
		default:
			res.Warnings = append(res.Warnings, fmt.Sprintf("rpm: %v; packages get no repository hints", err))
		}
	}
	seen := map[string]bool{}
	for _, f := range dbs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("rpm: %w", err)
		}
		infos, err := readDB(ctx, f, wals[f.Path()])
		if err != nil {
			return nil, fmt.Errorf("rpm: reading %s: %w", f.Path(), err)
		}
		ns := namespace(infos)
		var pkgs []*report.Package
		for _, in := range infos {
			if in.Name == "gpg-pubkey" {
				continue
			}
			p, err := newPackage(in, f.Path(), ns)
			if err != nil {
				return nil, fmt.Errorf("rpm: %s: %w", f.Path(), err)
			}
			k := dnf.Key{Name: in.Name, Epoch: in.EpochNum(), Version: in.Version, Release: in.Release, Arch: in.Arch}
			if id := repoids[k]; id != "" {
				p.RepositoryHint = rhel.RepoidHint(id)
			}
			pkgs = append(pkgs, p)
			if err := addOwned(in, seen); err != nil {
				res.Warnings = append(res.Warnings, fmt.Sprintf("rpm: %s: package %s: file list: %v", f.Path(), in.Name, err))
			}
		}
		slices.SortFunc(pkgs, func(a, b *report.Package) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Arch, b.Arch))
		})
		res.Packages = append(res.Packages, pkgs...)
	}
	if len(seen) >= owned.MaxFiles {
		res.Warnings = append(res.Warnings, fmt.Sprintf("rpm: more than %d owned files; the rest are not recorded", owned.MaxFiles))
	}
	for p := range seen {
		res.OwnedFiles = append(res.OwnedFiles, p)
	}
	slices.Sort(res.OwnedFiles)
	return res, nil
}

// newPackage builds the package of one header.
func newPackage(in *rpmdb.PackageInfo, db, ns string) (*report.Package, error) {
	if in.Name == "" || in.Version == "" {
		return nil, fmt.Errorf("%w: a package header without a name or version (name %q, version %q)", errCorrupt, in.Name, in.Version)
	}
	epoch := in.EpochNum()
	vr := in.Version
	if in.Release != "" {
		vr += "-" + in.Release
	}
	version := vr
	if epoch > 0 {
		version = strconv.Itoa(epoch) + ":" + vr
	}
	p := &report.Package{
		Name:      in.Name,
		Version:   version,
		Kind:      report.KindBinary,
		Arch:      in.Arch,
		Module:    module(in.Modularitylabel),
		PackageDB: db,
		PURL:      purl(ns, in.Name, vr, in.Arch, epoch),
	}
	if name, svr, ok := ParseSourceRPM(in.SourceRpm); ok {
		sv := svr
		if epoch > 0 {
			sv = strconv.Itoa(epoch) + ":" + svr
		}
		p.Source = &report.Package{
			Name:    name,
			Version: sv,
			Kind:    report.KindSource,
			PURL:    purl(ns, name, svr, "src", epoch),
		}
	}
	return p, nil
}

func purl(ns, name, vr, arch string, epoch int) string {
	var q packageurl.Qualifiers
	if arch != "" {
		q = append(q, packageurl.Qualifier{Key: "arch", Value: arch})
	}
	if epoch > 0 {
		q = append(q, packageurl.Qualifier{Key: "epoch", Value: strconv.Itoa(epoch)})
	}
	return packageurl.NewPackageURL(packageurl.TypeRPM, ns, name, vr, q, "").ToString()
}

// module returns "name:stream" of a modularity label
// ("nodejs:14:8030020210527075232:bd1311ed"), or "" when there is none.
func module(label string) string {
	name, rest, ok := strings.Cut(label, ":")
	if !ok || name == "" {
		return ""
	}
	stream, _, _ := strings.Cut(rest, ":")
	if stream == "" {
		return ""
	}
	return name + ":" + stream
}

// ParseSourceRPM splits a source rpm file name, NAME-VERSION-RELEASE.src.rpm
// (also .nosrc.rpm), into NAME and VERSION-RELEASE. The name may contain
// dashes; version and release may not. ok is false for anything else.
func ParseSourceRPM(s string) (name, versionRelease string, ok bool) {
	base, found := strings.CutSuffix(s, ".src.rpm")
	if !found {
		if base, found = strings.CutSuffix(s, ".nosrc.rpm"); !found {
			return "", "", false
		}
	}
	r := strings.LastIndexByte(base, '-')
	if r <= 0 {
		return "", "", false
	}
	v := strings.LastIndexByte(base[:r], '-')
	if v <= 0 || v+1 == r || r+1 == len(base) {
		return "", "", false
	}
	return base[:v], base[v+1:], true
}

// releasePackages maps the name of a distribution's release package (or a
// prefix of it ending in "-") to the PURL namespace.
var releasePackages = []struct{ prefix, ns string }{
	{"redhat-release", "redhat"},
	{"fedora-release", "fedora"},
	{"centos-release", "centos"},
	{"centos-stream-release", "centos"},
	{"centos-linux-release", "centos"},
	{"rocky-release", "rocky"},
	{"almalinux-release", "almalinux"},
	{"oraclelinux-release", "oracle"},
	{"sles-release", "suse"},
	{"SLES-release", "suse"},
	{"sle-micro-release", "suse"},
	{"openSUSE-release", "opensuse"},
	{"mariner-release", "mariner"},
	{"azurelinux-release", "azurelinux"},
	{"photon-release", "photon"},
	{"sl-release", "scientific"},
}

// vendors maps a lowercase substring of a package's Vendor to the PURL
// namespace, most specific first.
var vendors = []struct{ sub, ns string }{
	{"red hat", "redhat"},
	{"fedora", "fedora"},
	{"centos", "centos"},
	{"rocky", "rocky"},
	{"almalinux", "almalinux"},
	{"oracle", "oracle"},
	{"amazon", "amazon"},
	{"opensuse", "opensuse"},
	{"suse", "suse"},
	{"vmware", "photon"},
}

// namespace decides the PURL namespace of a database's packages; see
// Scanner.
func namespace(infos []*rpmdb.PackageInfo) string {
	count := map[string]int{}
	for _, in := range infos {
		for _, r := range releasePackages {
			if in.Name == r.prefix || strings.HasPrefix(in.Name, r.prefix+"-") {
				return r.ns
			}
		}
		if in.Name == "system-release" && strings.Contains(strings.ToLower(in.Vendor), "amazon") {
			return "amazon"
		}
		v := strings.ToLower(in.Vendor)
		for _, m := range vendors {
			if strings.Contains(v, m.sub) {
				count[m.ns]++
				break
			}
		}
	}
	best := "redhat"
	n := 0
	for _, ns := range slices.Sorted(maps.Keys(count)) {
		if count[ns] > n {
			best, n = ns, count[ns]
		}
	}
	return best
}

// fileTypeMask and regularFile are the file-type bits of an rpm file mode
// (st_mode).
const (
	fileTypeMask = 0o170000
	regularFile  = 0o100000
)

// addOwned adds a package's relevant files to seen, up to owned.MaxFiles.
// The file list is BASENAMES[i] in DIRNAMES[DIRINDEXES[i]], with mode
// FILEMODES[i]; an index out of range is an error (go-rpmdb's own
// InstalledFiles panics on a negative one).
func addOwned(in *rpmdb.PackageInfo, seen map[string]bool) error {
	if len(seen) >= owned.MaxFiles {
		return nil
	}
	if len(in.DirIndexes) != len(in.BaseNames) {
		return fmt.Errorf("%d base names but %d directory indexes", len(in.BaseNames), len(in.DirIndexes))
	}
	for i, base := range in.BaseNames {
		di := int(in.DirIndexes[i])
		if di < 0 || di >= len(in.DirNames) {
			return fmt.Errorf("file %d: directory index %d out of range (%d directories)", i, di, len(in.DirNames))
		}
		var mode uint16
		if i < len(in.FileModes) {
			mode = in.FileModes[i]
		}
		p, ok := owned.Clean(in.DirNames[di] + base)
		if !ok || !owned.Relevant(p, mode&fileTypeMask == regularFile) {
			continue
		}
		for _, a := range owned.Aliases(p) {
			if len(seen) >= owned.MaxFiles {
				return nil
			}
			seen[a] = true
		}
	}
	return nil
}
