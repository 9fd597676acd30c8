#!/usr/bin/env bash
# ensure-postgres.sh: make sure a PostgreSQL server is reachable and print
# how to reach it, as the last line on stdout:
#
#   DATABASE_URL='postgres://...'
#
# Use it as   eval "$(scripts/ensure-postgres.sh)"; export DATABASE_URL
# or source it (. scripts/ensure-postgres.sh), which also exports
# DATABASE_URL. Messages about what it did go to stderr.
#
# In order, it:
#  1. keeps $DATABASE_URL when it is set and a server answers there;
#  2. looks for a server on 127.0.0.1:5432 and /var/run/postgresql, trying
#     user $(id -un) then postgres, database stevedore, test, then postgres
#     (from the postgres database it creates and uses "stevedore" if it can);
#  3. as root: starts the Debian cluster when one exists and nothing listens,
#     installs PostgreSQL with apt-get when it is missing, and gives root a
#     superuser role and a "stevedore" database when it cannot log in;
#  4. otherwise (not root, or STEVEDORE_PG_PRIVATE=1) runs a private
#     throw-away cluster: initdb/pg_ctl, data in
#     ${XDG_CACHE_HOME:-$HOME/.cache}/stevedore/pg (as root, where initdb
#     refuses to run, the cluster runs as the postgres user in
#     /var/tmp/stevedore-pg), trust auth on a unix socket in that directory
#     only (no TCP), port ${STEVEDORE_PG_PORT:-55432}, database "stevedore",
#     fsync off. STEVEDORE_PG_DIR overrides the directory.
# Running it again is cheap: a working server is found in a few milliseconds.

_sdpg_say() { printf 'ensure-postgres: %s\n' "$*" >&2; }

# _sdpg_bin NAME: path of a PostgreSQL program, from PATH or the newest
# /usr/lib/postgresql/*/bin.
_sdpg_bin() {
	local d
	if command -v "$1" >/dev/null 2>&1 && [ "$1" != initdb ] && [ "$1" != pg_ctl ]; then
		command -v "$1"
		return 0
	fi
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
		if [ -x "$d/$1" ]; then
			printf '%s\n' "$d/$1"
			return 0
		fi
	done
	command -v "$1" 2>/dev/null
}

# _sdpg_detached LOG CMD...: run a command that leaves a server behind, with
# every descriptor but 0-2 closed and those on /dev/null and LOG, so that the
# server holds no pipe of ours (or of whoever runs us) open.
_sdpg_detached() {
	local log=$1
	shift
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
		done
		exec "$@"
	) </dev/null >>"$log" 2>&1
}

# _sdpg_try CONNINFO: true when a server accepts a login there.
_sdpg_try() {
	local psql
	psql=$(_sdpg_bin psql) || return 1
	PGCONNECT_TIMEOUT=3 "$psql" "$1" -Atqc 'select 1' >/dev/null 2>&1 </dev/null
}

# _sdpg_find_local: print a working URL for a local server (TCP 127.0.0.1
# then the Debian socket directory), or fail.
_sdpg_find_local() {
	local me host db user url conn
	me=$(id -un)
	for host in 127.0.0.1 /var/run/postgresql; do
		if [ "${host#/}" != "$host" ] && [ ! -S "$host/.s.PGSQL.5432" ]; then
			continue
		fi
		for user in "$me" postgres; do
			for db in stevedore test postgres; do
				conn="host=$host port=5432 user=$user dbname=$db sslmode=disable"
				_sdpg_try "$conn" || continue
				if [ "$db" = postgres ] && _sdpg_createdb "host=$host port=5432 user=$user dbname=postgres"; then
					db=stevedore
				fi
				if [ "$host" = 127.0.0.1 ]; then
					url="postgres://$user@127.0.0.1:5432/$db?sslmode=disable"
				else
					url="postgres://$user@/$db?host=$host&port=5432&sslmode=disable"
				fi
				printf '%s\n' "$url"
				return 0
			done
		done
	done
	return 1
}

# _sdpg_createdb CONNINFO: create database stevedore through that
# connection unless it exists.
_sdpg_createdb() {
	local psql exists
	psql=$(_sdpg_bin psql) || return 1
	exists=$("$psql" "$1" -Atqc "select 1 from pg_database where datname = 'stevedore'" 2>/dev/null </dev/null) || return 1
	[ "$exists" = 1 ] && return 0
	if "$psql" "$1" -qc 'CREATE DATABASE stevedore' >/dev/null 2>&1 </dev/null; then
		_sdpg_say "created database stevedore"
		return 0
	fi
	return 1
}

_sdpg_listening() {
	local isready
	isready=$(_sdpg_bin pg_isready) || return 1
	"$isready" -q -h 127.0.0.1 -p 5432 -t 2 >/dev/null 2>&1 ||
		"$isready" -q -h /var/run/postgresql -p 5432 -t 2 >/dev/null 2>&1
}

_sdpg_wait_ready() {
	local _
	for _ in $(seq 1 60); do
		_sdpg_listening && return 0
		sleep 0.5
	done
	return 1
}

# _sdpg_newest DIR: the name of the highest-versioned entry in DIR.
_sdpg_newest() {
	[ -d "$1" ] || return 0
	find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1
}

# _sdpg_start_debian_cluster: start (creating it if needed) the newest
# Debian cluster named main. Root only.
_sdpg_start_debian_cluster() {
	local ver
	ver=$(_sdpg_newest /etc/postgresql)
	if [ -z "$ver" ]; then
		ver=$(_sdpg_newest /usr/lib/postgresql)
		[ -n "$ver" ] || return 1
	fi
	if [ ! -d "/etc/postgresql/$ver/main" ]; then
		_sdpg_say "creating Debian cluster $ver/main (pg_createcluster)"
		pg_createcluster "$ver" main >&2 || return 1
	fi
	_sdpg_say "starting Debian cluster $ver/main (pg_ctlcluster --skip-systemctl-redirect $ver main start)"
	local log
	log=$(mktemp)
	_sdpg_detached "$log" pg_ctlcluster --skip-systemctl-redirect "$ver" main start || cat "$log" >&2
	rm -f "$log"
	_sdpg_wait_ready
}

# _sdpg_grant_root: as root, through the postgres user's peer login, give
# the current user a superuser role and a stevedore database.
_sdpg_grant_root() {
	local me psql
	me=$(id -un)
	psql=$(_sdpg_bin psql) || return 1
	[ -S /var/run/postgresql/.s.PGSQL.5432 ] || return 1
	_sdpg_say "giving $me a superuser role and a database stevedore (as the postgres user)"
	runuser -u postgres -- "$psql" -h /var/run/postgresql -d postgres -v ON_ERROR_STOP=1 -q >/dev/null 2>&1 <<-SQL || return 1
		SELECT format('CREATE ROLE %I SUPERUSER LOGIN', '$me')
		WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$me') \gexec
		SELECT format('CREATE DATABASE stevedore OWNER %I', '$me')
		WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'stevedore') \gexec
	SQL
}

# _sdpg_private: start (creating it if needed) the private cluster and
# print its URL.
_sdpg_private() {
	local initdb pg_ctl base data port owner run
	initdb=$(_sdpg_bin initdb) || true
	pg_ctl=$(_sdpg_bin pg_ctl) || true
	if [ -z "$initdb" ] || [ -z "$pg_ctl" ]; then
		_sdpg_say "PostgreSQL is not installed and I cannot install it (not root)."
		_sdpg_say "Install it (sudo apt-get install postgresql) or set DATABASE_URL."
		return 1
	fi
	port=${STEVEDORE_PG_PORT:-55432}
	run=()
	if [ "$(id -u)" -eq 0 ]; then
		# initdb and postgres refuse to run as root.
		owner=postgres
		id "$owner" >/dev/null 2>&1 || {
			_sdpg_say "running as root but there is no postgres user to own a private cluster"
			return 1
		}
		base=${STEVEDORE_PG_DIR:-/var/tmp/stevedore-pg}
		run=(runuser -u "$owner" --)
	else
		owner=$(id -un)
		base=${STEVEDORE_PG_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stevedore/pg}
	fi
	data=$base/data
	mkdir -p "$base"
	if [ "$(id -u)" -eq 0 ]; then
		chown "$owner:" "$base"
	fi
	chmod 700 "$base"

	if [ ! -s "$data/PG_VERSION" ]; then
		_sdpg_say "creating a private cluster in $data (initdb as $owner)"
		rm -rf "$data"
		"${run[@]}" "$initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C >"$base/initdb.log" 2>&1 || {
			cat "$base/initdb.log" >&2
			return 1
		}
		"${run[@]}" tee -a "$data/postgresql.conf" >/dev/null <<-CONF
			# Added by scripts/ensure-postgres.sh: a private, socket-only,
			# throw-away cluster for development and tests.
			listen_addresses = ''
			unix_socket_directories = '$base'
			port = $port
			fsync = off
			synchronous_commit = off
			full_page_writes = off
		CONF
	fi
	if "${run[@]}" "$pg_ctl" -D "$data" status >/dev/null 2>&1; then
		_sdpg_say "private cluster in $data is running (socket $base, port $port)"
	else
		_sdpg_say "starting private cluster in $data (socket $base, port $port; log $base/postgres.log)"
		_sdpg_detached /dev/null "${run[@]}" "$pg_ctl" -D "$data" -l "$base/postgres.log" -w -t 60 start || {
			tail -n 20 "$base/postgres.log" >&2
			return 1
		}
	fi
	_sdpg_createdb "host=$base port=$port user=postgres dbname=postgres" || {
		_sdpg_say "cannot create database stevedore in the private cluster"
		return 1
	}
	printf 'postgres://postgres@/stevedore?host=%s&port=%s&sslmode=disable\n' "$base" "$port"
}

# _sdpg_resolve prints the URL as its last line on stdout.
_sdpg_resolve() {
	local url
	if [ "${STEVEDORE_PG_PRIVATE:-0}" = 1 ]; then
		_sdpg_say "STEVEDORE_PG_PRIVATE=1: using a private cluster"
		_sdpg_private
		return
	fi

	if [ -n "${DATABASE_URL:-}" ]; then
		if [ -z "$(_sdpg_bin psql)" ]; then
			_sdpg_say "DATABASE_URL is set; psql is not installed, so I use it unchecked"
			printf '%s\n' "$DATABASE_URL"
			return 0
		fi
		if _sdpg_try "$DATABASE_URL"; then
			_sdpg_say "DATABASE_URL is set and the server answers: using it"
			printf '%s\n' "$DATABASE_URL"
			return 0
		fi
		_sdpg_say "DATABASE_URL is set but nothing answers there; looking for a local server"
	fi

	if url=$(_sdpg_find_local); then
		_sdpg_say "using the PostgreSQL server already running: $url"
		printf '%s\n' "$url"
		return 0
	fi

	if [ "$(id -u)" -eq 0 ]; then
		if [ -z "$(_sdpg_bin initdb)" ] || [ -z "$(_sdpg_newest /usr/lib/postgresql)" ]; then
			_sdpg_say "PostgreSQL is not installed; installing it with apt-get (running as root)"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update >&2 || true
			apt-get install -y postgresql >&2 || {
				_sdpg_say "apt-get install postgresql failed"
				return 1
			}
		fi
		if ! _sdpg_listening; then
			_sdpg_start_debian_cluster || _sdpg_say "could not start the Debian cluster"
		fi
		if _sdpg_listening; then
			if url=$(_sdpg_find_local); then
				_sdpg_say "using the local PostgreSQL server: $url"
				printf '%s\n' "$url"
				return 0
			fi
			if _sdpg_grant_root && url=$(_sdpg_find_local); then
				_sdpg_say "using the local PostgreSQL server: $url"
				printf '%s\n' "$url"
				return 0
			fi
			_sdpg_say "a server listens on port 5432 but I cannot log in to it"
		fi
	fi

	_sdpg_say "no usable system server: falling back to a private cluster"
	_sdpg_private
}

# _sdpg_main writes the URL to fd 3; run it as _sdpg_main 3>&1 1>&2 so
# that any other output goes to stderr.
_sdpg_main() {
	local url
	url=$(_sdpg_resolve) || return 1
	url=${url##*$'\n'}
	[ -n "$url" ] || return 1
	printf '%s\n' "$url" >&3
}

_sdpg_cleanup() {
	unset -f _sdpg_say _sdpg_bin _sdpg_try _sdpg_find_local _sdpg_createdb \
		_sdpg_listening _sdpg_wait_ready _sdpg_newest _sdpg_detached _sdpg_start_debian_cluster \
		_sdpg_grant_root _sdpg_private _sdpg_resolve _sdpg_main _sdpg_cleanup
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
	# Sourced: leave the caller's shell options alone, export the result.
	if _sdpg_url=$( (set -euo pipefail; _sdpg_main 3>&1 1>&2) ); then
		export DATABASE_URL="$_sdpg_url"
		printf "DATABASE_URL='%s'\n" "$DATABASE_URL"
		unset _sdpg_url
		_sdpg_cleanup
	else
		unset _sdpg_url
		_sdpg_cleanup
		printf 'ensure-postgres: failed to find or start PostgreSQL\n' >&2
		return 1
	fi
else
	set -euo pipefail
	url=$(_sdpg_main 3>&1 1>&2) || {
		_sdpg_say "failed to find or start PostgreSQL"
		exit 1
	}
	printf "DATABASE_URL='%s'\n" "$url"
fi
