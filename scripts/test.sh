#!/usr/bin/env bash
# scripts/test.sh: the whole test suite, what CI runs.
#
#   1. a PostgreSQL server (scripts/ensure-postgres.sh; DATABASE_URL is
#      exported for the tests), the oracles some tests compare with
#      (dpkg-query, rpm) and the npm packages of the SBOM tests' CycloneDX
#      consumer (node, npm ci into the cache);
#   2. gofmt, go vet, staticcheck;
#   3. go test -race -count=1 ./... , and the same in each module of its
#      own under compat/ (checks against other projects' code, which the
#      product does not depend on) and under bench/ (benchmark commands
#      that use another project as a library: built and vetted);
#   4. a short fuzz smoke of every Fuzz target in the tree.
#
# Environment:
#   STEVEDORE_RACE=0        run the tests without the race detector
#   STEVEDORE_FUZZTIME=10s  time per fuzz target; 0 skips the fuzz smoke
#   STEVEDORE_TEST_TIMEOUT  go test -timeout (default 20m)
#
# The race detector is on by default: Stevedore is a concurrent worker pool
# and data races are the bugs its tests most need to catch. On this 2-core
# machine it makes the suite slower (instrumented builds, ~2-5x run time) but
# it stays within the 20-minute go test timeout and CI's 90-minute budget;
# STEVEDORE_RACE=0 is there for a quick local loop.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

say() { printf '\n==> %s\n' "$*" >&2; }
fail() {
	printf '\ntest.sh: FAILED: %s\n' "$*" >&2
	exit 1
}
# Static checks do not stop the run: their failures are collected and
# reported at the end, after the tests, so one run shows everything.
failures=()
failed() {
	printf 'test.sh: %s failed\n' "$1" >&2
	failures+=("$1")
}

staticcheck_version=v0.8.2 # supports go1.26; newest release as of 2026-10
cache=${XDG_CACHE_HOME:-$HOME/.cache}/stevedore
fuzztime=${STEVEDORE_FUZZTIME:-10s}
race=(-race)
[ "${STEVEDORE_RACE:-1}" = 0 ] && race=()

command -v go >/dev/null 2>&1 || fail "go is not installed (Go 1.26 or newer is needed)"
go version >&2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stevedore-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- services and tools the tests need -------------------------------------
say "PostgreSQL"
eval "$(scripts/ensure-postgres.sh)"
export DATABASE_URL
printf 'DATABASE_URL=%s\n' "$DATABASE_URL" >&2

apt_updated=0
apt_install() {
	if [ "$(id -u)" -ne 0 ]; then
		printf 'test.sh: warning: %s is missing and I am not root to install it (apt-get install %s)\n' "$1" "$1" >&2
		return 0
	fi
	say "installing $1 with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if [ "$apt_updated" = 0 ]; then
		apt-get update >&2
		apt_updated=1
	fi
	apt-get install -y "$1" >&2
}
command -v dpkg-query >/dev/null 2>&1 || apt_install dpkg
command -v rpm >/dev/null 2>&1 || apt_install rpm
# PyJWT, the library Quay signs its Clair requests with (internal/api/clairauth's
# tests make tokens with it); Debian's python3, not another one on PATH.
/usr/bin/python3 -c 'import jwt' >/dev/null 2>&1 || apt_install python3-jwt
# The independent consumer of the SBOM export's CycloneDX output
# (internal/testing/sbomcheck): @cyclonedx/cyclonedx-library from the npm registry,
# installed with npm ci from its lock file into the cache, in the directory
# the Go tests look in (named by the lock file's hash).
# The runtime scanner's oracles (scanner/runtime TestHostRuntimes): a JDK's
# java with its release file, Debian's python3 and node, the Go toolchain.
command -v java >/dev/null 2>&1 || apt_install default-jre-headless
command -v node >/dev/null 2>&1 || apt_install nodejs
command -v npm >/dev/null 2>&1 || apt_install npm
npmlock=internal/testing/sbomcheck/testdata/npm/package-lock.json
STEVEDORE_NPM_DIR=$cache/npm-$(sha256sum "$npmlock" | cut -c1-12)
if [ ! -f "$STEVEDORE_NPM_DIR/node_modules/@cyclonedx/cyclonedx-library/package.json" ]; then
	say "npm ci: @cyclonedx/cyclonedx-library into $STEVEDORE_NPM_DIR"
	mkdir -p "$cache"
	npmtmp=$(mktemp -d "$cache/.npm-install-XXXXXX")
	cp internal/testing/sbomcheck/testdata/npm/package.json "$npmlock" "$npmtmp/"
	npm ci --prefix "$npmtmp" --no-audit --no-fund --loglevel=error >&2 ||
		fail "npm ci of the CycloneDX consumer's packages (internal/testing/sbomcheck/testdata/npm)"
	if [ -e "$STEVEDORE_NPM_DIR" ]; then
		rm -rf "$npmtmp" # installed meanwhile by a test
	else
		mv "$npmtmp" "$STEVEDORE_NPM_DIR"
	fi
fi
export STEVEDORE_NPM_DIR

# --- static checks ---------------------------------------------------------
say "gofmt"
mapfile -t gofiles < <(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './vendor/*' | sort)
unformatted=$(gofmt -l "${gofiles[@]}")
if [ -n "$unformatted" ]; then
	printf '%s\n' "$unformatted" >&2
	failed "gofmt (these files need gofmt -w)"
fi

say "go vet ./..."
go vet ./... || failed "go vet"

say "staticcheck $staticcheck_version"
sc=$cache/bin/staticcheck-$staticcheck_version
if [ ! -x "$sc" ]; then
	mkdir -p "$cache/bin"
	GOBIN=$tmp/gobin go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version" ||
		fail "go install staticcheck@$staticcheck_version"
	mv "$tmp/gobin/staticcheck" "$sc"
fi
"$sc" ./... || failed "staticcheck"
# Modules of their own under compat/ and bench/: checked apart (./... stops at
# them).
mapfile -t compat < <(find compat bench -mindepth 2 -maxdepth 2 -name go.mod -exec dirname {} \; 2>/dev/null | sort)
for mod in "${compat[@]}"; do
	say "go vet, staticcheck in $mod"
	(cd "$mod" && go vet ./...) || failed "go vet in $mod"
	(cd "$mod" && "$sc" ./...) || failed "staticcheck in $mod"
done

# --- tests -----------------------------------------------------------------
# go test -json goes through a small summariser (standard library only) that
# prints each package's result, the full output of failing tests and of
# failing packages, and a closing "N passed, N failed, N skipped" line.
cat >"$tmp/summarize.go" <<'EOF'
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type event struct {
	Action, Package, Test, Output, ImportPath string
	Elapsed                                   float64
}

func main() {
	var passed, failed, skipped int
	var failedTests []string
	testFailed := map[string]bool{} // packages with a failed test
	buf := map[string]*strings.Builder{}
	out := func(key string) *strings.Builder {
		b := buf[key]
		if b == nil {
			b = &strings.Builder{}
			buf[key] = b
		}
		return b
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Println(string(line))
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch e.Action {
		case "build-output":
			fmt.Print(e.Output)
		case "output":
			out(key).WriteString(e.Output)
		case "pass", "skip", "fail":
			if e.Test != "" {
				switch e.Action {
				case "pass":
					passed++
				case "skip":
					skipped++
				case "fail":
					failed++
					testFailed[e.Package] = true
					failedTests = append(failedTests, e.Package+" "+e.Test)
					fmt.Print(out(key).String())
				}
				delete(buf, key)
				continue
			}
			// The package's own lines: print them all when it failed,
			// else only its summary ("ok ...", "? ... [no test files]").
			text := out(key).String()
			delete(buf, key)
			if e.Action == "fail" {
				// A package that failed with no failed test (build
				// failure, panic, timeout, TestMain) counts as one.
				if !testFailed[e.Package] {
					failed++
					failedTests = append(failedTests, e.Package+" (package)")
				}
				fmt.Print(text)
				if !strings.Contains(text, "FAIL\t"+e.Package) {
					fmt.Printf("FAIL\t%s\n", e.Package)
				}
				continue
			}
			lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
			fmt.Println(lines[len(lines)-1])
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(2)
	}
	if len(failedTests) > 0 {
		fmt.Println("\nFailed tests:")
		for _, t := range failedTests {
			fmt.Println("  " + t)
		}
	}
	fmt.Printf("\ntests: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 {
		os.Exit(1)
	}
}
EOF
(cd "$tmp" && GOFLAGS='' go build -o summarize summarize.go) || fail "building the test summariser"

timeout=${STEVEDORE_TEST_TIMEOUT:-20m}
say "go test ${race[*]} -count=1 -timeout $timeout ./..."
start=$SECONDS
set +e
go test "${race[@]}" -count=1 -timeout "$timeout" -json ./... 2>&1 | "$tmp/summarize" | tee "$tmp/summary.txt"
status=("${PIPESTATUS[@]}")
set -e
printf 'go test took %d s\n' "$((SECONDS - start))" >&2
if [ "${status[0]}" -ne 0 ] || [ "${status[1]}" -ne 0 ]; then
	failed "go test"
fi
for mod in "${compat[@]}"; do
	say "go test ${race[*]} -count=1 ./... in $mod"
	set +e
	(cd "$mod" && go test "${race[@]}" -count=1 -timeout "$timeout" -json ./... 2>&1) | "$tmp/summarize" | tee "$tmp/summary-${mod//\//-}.txt"
	status=("${PIPESTATUS[@]}")
	set -e
	if [ "${status[0]}" -ne 0 ] || [ "${status[1]}" -ne 0 ]; then
		failed "go test in $mod"
	fi
done
# One closing count over the main module and the compat/ modules.
counts=$(grep -hE '^tests: [0-9]+ passed' "$tmp"/summary*.txt |
	awk '{p += $2; f += $4; s += $6} END {if (NR) printf "tests: %d passed, %d failed, %d skipped\n", p, f, s}')

# --- fuzz smoke ------------------------------------------------------------
nfuzz=0
if [ "$fuzztime" != 0 ] && [ "$fuzztime" != 0s ]; then
	say "fuzz smoke, $fuzztime per target"
	# count_inputs counts the saved inputs of the current target's corpus.
	count_inputs() { if [ -d "$corpus" ]; then find "$corpus" -type f | wc -l; else echo 0; fi; }
	while IFS=: read -r file name; do
		dir=./$(dirname "${file#./}")
		name=${name#func }
		name=${name%%(*}
		printf -- '--- %s %s\n' "$dir" "$name" >&2
		nfuzz=$((nfuzz + 1))
		corpus=$dir/testdata/fuzz/$name
		before=$(count_inputs)
		if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$dir" </dev/null; then
			# A finding always saves its input. A failure that saved
			# none is the fuzzing engine itself timing out on this
			# loaded machine ("context deadline exceeded"): run the
			# target once more; a second failure counts.
			if [ "$(count_inputs)" -gt "$before" ]; then
				failed "fuzz $name in $dir (the failing input is saved under $corpus)"
			else
				printf 'test.sh: fuzz %s failed without a failing input (engine timeout under load); once more\n' "$name" >&2
				go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$dir" </dev/null ||
					failed "fuzz $name in $dir (see $corpus for a failing input)"
			fi
		fi
	done < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)' . |
		grep -v -e '/testdata/' -e '^./vendor/' -e '^./compat/' | sort -u)
else
	say "fuzz smoke skipped (STEVEDORE_FUZZTIME=$fuzztime)"
fi

cd "$root"
if [ ${#failures[@]} -gt 0 ]; then
	printf '\ntest.sh: %d check(s) failed:\n' "${#failures[@]}" >&2
	printf '  - %s\n' "${failures[@]}" >&2
	[ -z "$counts" ] || printf '%s\n' "$counts"
	fail "$(IFS=';'; printf '%s' "${failures[*]}")"
fi
printf '\ntest.sh: all checks passed: gofmt, go vet, staticcheck, go test%s (main module and compat/), fuzz smoke (%d targets)\n' \
	"${race:+ -race}" "$nfuzz"
printf '%s\n' "$counts"
