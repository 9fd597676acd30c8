#!/usr/bin/env bash
# Lists the packages of the Rust, .NET, PHP, conda and zipped-egg test data
# (scanner/{rust,dotnet,composer,conda,python}/testdata) with tools
# independent of Stevedore, one "file name version" line each, for comparison
# with the scanners' TestFixtures/TestEggs expectations (issue 14):
#   Rust executables  objcopy --dump-section .dep-v0 + Python's zlib and json
#                     (crates of kind "runtime", the default)
#   Cargo.lock        Python 3.11's tomllib
#   composer, conda   jq
#   zipped eggs       Python's importlib.metadata over the .egg
#   .NET deps.json    no .NET SDK here: jq lists the libraries of type
#                     package/project/runtimepack, before the runtime-target
#                     rule (compare with the upstream tests' listings)
# Needs python3 (≥ 3.11), jq and binutils.
set -euo pipefail
cd "$(dirname "$0")/../scanner"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for f in rust/testdata/*; do
	case $f in
	*.lock*)
		python3 -c 'import sys, tomllib
for p in tomllib.load(open(sys.argv[1], "rb")).get("package", []): print(sys.argv[1], p["name"], p["version"])' "$f" ;;
	*.md) ;;
	*)
		objcopy --dump-section .dep-v0="$tmp/dep" "$f" "$tmp/o" 2>/dev/null || continue
		python3 -c 'import sys, zlib, json
for p in json.loads(zlib.decompress(open(sys.argv[2], "rb").read()))["packages"]:
    if p.get("kind", "runtime") == "runtime": print(sys.argv[1], p["name"], p["version"])' "$f" "$tmp/dep" ;;
	esac
done
for f in composer/testdata/*.json; do
	jq -r --arg f "$f" 'if type == "array" then .[] else .packages[] end | "\($f) \(.name) \(.version)"' "$f"
done
for f in conda/testdata/*.json; do
	jq -r --arg f "$f" '"\($f) \(.name) \(.version)"' "$f"
done
for f in python/testdata/*.egg; do
	python3 -c 'import sys, importlib.metadata as md
for d in md.distributions(path=[sys.argv[1]]):
    if d.metadata["Name"]: print(sys.argv[1], d.metadata["Name"], d.version)' "$f"
done
for f in dotnet/testdata/*.deps.json; do
	jq -r --arg f "$f" '.libraries | to_entries[] | select(.value.type | ascii_downcase | IN("package", "project", "runtimepack")) | "\($f) \(.key | sub("^runtimepack\\."; "") | sub("/"; " "))"' "$f"
done
