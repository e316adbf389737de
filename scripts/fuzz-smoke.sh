#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME (default 5s) each.
# `go test` alone replays the seed corpora; this adds a short random search.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
count=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	grep -lq '^func Fuzz' "$dir"/*_test.go 2>/dev/null || continue
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "$pkg" >/tmp/fuzz-$$.log 2>&1 || {
			cat /tmp/fuzz-$$.log; rm -f /tmp/fuzz-$$.log; exit 1; }
		count=$((count + 1))
	done
done
rm -f /tmp/fuzz-$$.log
echo "fuzz: $count targets passed"
