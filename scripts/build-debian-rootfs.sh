#!/usr/bin/env bash
# build-debian-rootfs.sh OUT.tar.gz
#
# Builds a real Debian bookworm minbase root filesystem with debootstrap and
# packs it as a deterministic gzipped tarball (sorted names, numeric owners,
# mtime 0, empty /proc /sys /dev). The result is a cache: when OUT exists the
# script does nothing. The mirror is read from the machine's apt sources, so
# the build uses whatever mirror (or proxy) apt already uses here.
#
# Environment:
#   STEVEDORE_DEBIAN_SUITE   suite to bootstrap (default bookworm)
#   STEVEDORE_DEBIAN_MIRROR  mirror URL (default: from /etc/apt sources)
set -euo pipefail

log() { printf 'build-debian-rootfs: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUT.tar.gz"
out=$1
suite=${STEVEDORE_DEBIAN_SUITE:-bookworm}

if [ -s "$out" ]; then
	log "$out exists; nothing to do (delete it to rebuild)"
	exit 0
fi

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root (run with sudo, or as root)"

if ! command -v debootstrap >/dev/null 2>&1; then
	log "debootstrap is missing; installing it with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2
	apt-get install -y debootstrap >&2
fi

# mirror_from_apt prints the first Debian archive URI that apt uses (deb822
# sources first, then the classic one-line format), skipping security.
mirror_from_apt() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' "$f" |
			grep -v -- '-security' | head -n 1 || true)
		if [ -n "$uri" ]; then
			printf '%s\n' "$uri"
			return 0
		fi
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }' "$f" |
			grep -v -- '-security' | head -n 1 || true)
		if [ -n "$uri" ]; then
			printf '%s\n' "$uri"
			return 0
		fi
	done
	return 1
}

mirror=${STEVEDORE_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(mirror_from_apt) || die "found no Debian mirror in /etc/apt; set STEVEDORE_DEBIAN_MIRROR"
fi

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "${TMPDIR:-/tmp}/stevedore-rootfs.XXXXXX")
cleanup() {
	# A failed debootstrap can leave proc or sys mounted inside the tree.
	local m
	for m in proc sys dev/pts dev; do
		if mountpoint -q "$work/root/$m" 2>/dev/null; then umount -l "$work/root/$m" || true; fi
	done
	rm -rf "$work"
	[ -z "${tmp_out:-}" ] || rm -f "$tmp_out"
}
trap cleanup EXIT

log "debootstrap --variant=minbase $suite from $mirror (about a minute)"
start=$SECONDS
if ! debootstrap --variant=minbase "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1; then
	tail -n 30 "$work/debootstrap.log" >&2
	[ -f "$work/root/debootstrap/debootstrap.log" ] && tail -n 30 "$work/root/debootstrap/debootstrap.log" >&2
	die "debootstrap failed"
fi
log "debootstrap done in $((SECONDS - start)) s"

# Keep the directories, not what the build host had in them.
for d in proc sys dev; do
	if [ -d "$work/root/$d" ]; then
		find "$work/root/$d" -mindepth 1 -delete
	fi
done
# Like the official debian images: no package lists or apt caches (the
# Packages index alone is 50 MB), no downloaded .debs.
rm -rf "$work/root/debootstrap" \
	"$work/root/var/lib/apt/lists/"* \
	"$work/root/var/cache/apt/"*.bin \
	"$work/root/var/cache/apt/archives/"*.deb
mkdir -p "$work/root/var/lib/apt/lists/partial"

tmp_out="$out.tmp.$$"
tar --sort=name --numeric-owner --mtime=@0 --format=gnu \
	-C "$work/root" -cf - . | gzip -n -6 >"$tmp_out"
mv -f "$tmp_out" "$out"
tmp_out=
log "wrote $out ($(du -h "$out" | cut -f1))"
