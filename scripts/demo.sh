#!/usr/bin/env bash
# scripts/demo.sh: index a real Debian image, from nothing.
#
#   scripts/demo.sh                    scan a Debian bookworm minbase image
#                                      built here and served by a local registry
#   scripts/demo.sh REF...             scan these image references instead
#   scripts/demo.sh --format json ...  flags (words starting with -) go to
#                                      `stevedore scan` (REFs are host/name:tag)
#
# It installs what is missing (PostgreSQL with apt-get when root and it is
# not installed; debootstrap), builds the root filesystem once with
# debootstrap (cached in ${XDG_CACHE_HOME:-$HOME/.cache}/stevedore, about a
# minute the first time), builds the binaries, starts stevedore-registry on a
# free loopback port with the image pushed as debian:bookworm, and runs
# `stevedore scan` on it: the whole pipeline (embedded NATS JetStream,
# workers, Postgres) in one process. Without DATABASE_URL, `stevedore scan`
# runs a private PostgreSQL cluster of its own (created once, then reused).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'demo: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# Words starting with - are flags for `stevedore scan`; a flag written
# without "=" takes the next word as its value unless that word looks like an
# image reference (contains a "/"); use --flag=value to be explicit.
flags=()
refs=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	a=${args[i]}
	case $a in
	-h | --help)
		sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*=* | --) flags+=("$a") ;;
	-*)
		flags+=("$a")
		next=${args[i + 1]:-}
		if [ -n "$next" ] && [[ $next != -* ]] && [[ $next != */* ]]; then
			flags+=("$next")
			i=$((i + 1))
		fi
		;;
	*) refs+=("$a") ;;
	esac
done

command -v go >/dev/null 2>&1 || die "Go is not installed: Go 1.26 or newer is needed (https://go.dev/dl/)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stevedore-demo.XXXXXX")
registry_pid=
cleanup() {
	if [ -n "$registry_pid" ] && kill -0 "$registry_pid" 2>/dev/null; then
		kill "$registry_pid" 2>/dev/null || true
		wait "$registry_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# PostgreSQL: with DATABASE_URL set, stevedore scan uses that server;
# without, it runs a private cluster of its own from the local installation
# (internal/cli/localpg), which only has to be installed.
if [ -n "${DATABASE_URL:-}" ]; then
	say "PostgreSQL: DATABASE_URL is set, stevedore scan uses it"
else
	have_pg=
	for d in $(printf '%s\n' "$PATH" | tr ':' '\n') /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			have_pg=$d
			break
		fi
	done
	if [ -z "$have_pg" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "PostgreSQL is not installed: apt-get install postgresql (running as root)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update >&2 || true
		apt-get install -y postgresql >&2 || die "apt-get install postgresql failed"
	fi
	# Otherwise stevedore scan says how to install it.
fi

say "building the binaries"
bin=$tmp/bin
mkdir -p "$bin"
go build -o "$bin/" ./cmd/...
[ -x "$bin/stevedore" ] || die "cmd/stevedore did not build a stevedore binary"

if [ ${#refs[@]} -eq 0 ]; then
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/stevedore
	rootfs=$cache/debian-bookworm-minbase.tar.gz
	if [ ! -s "$rootfs" ]; then
		say "building a Debian bookworm minbase root filesystem (once; cached in $rootfs)"
		if [ "$(id -u)" -ne 0 ]; then
			command -v sudo >/dev/null 2>&1 || die "debootstrap needs root: run this as root once, or install sudo"
			sudo scripts/build-debian-rootfs.sh "$rootfs"
			sudo chown "$(id -u):$(id -g)" "$rootfs"
		else
			scripts/build-debian-rootfs.sh "$rootfs"
		fi
	fi

	say "starting stevedore-registry with debian:bookworm"
	log=$tmp/registry.log
	"$bin/stevedore-registry" --addr 127.0.0.1:0 --push "debian:bookworm=$rootfs" >"$log" 2>&1 &
	registry_pid=$!
	addr=
	for _ in $(seq 1 240); do
		if ! kill -0 "$registry_pid" 2>/dev/null; then
			cat "$log" >&2
			die "stevedore-registry exited before it was ready"
		fi
		addr=$(sed -n 's/.*msg=ready addr=\([^ ]*\).*/\1/p' "$log" | head -n 1)
		[ -n "$addr" ] && break
		sleep 0.25
	done
	[ -n "$addr" ] || {
		cat "$log" >&2
		die "stevedore-registry was not ready after 60 s"
	}
	grep 'msg=pushed' "$log" >&2 || true
	say "registry ready at $addr"
	refs=("$addr/debian:bookworm")
fi

say "stevedore scan ${flags[*]+${flags[*]} }${refs[*]}"
"$bin/stevedore" scan "${flags[@]}" "${refs[@]}"
