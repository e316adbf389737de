#!/usr/bin/env bash
# Fails unless every argument is a statically linked aarch64 ELF executable.
set -euo pipefail
[ $# -gt 0 ] || { echo "check-static: no binaries given" >&2; exit 1; }
status=0
for f in "$@"; do
	info=$(file -b "$f")
	if [[ $info != *"ELF 64-bit LSB executable, ARM aarch64"* || $info != *"statically linked"* ]]; then
		echo "check-static: $f is not a static aarch64 ELF: $info" >&2
		status=1
	else
		printf '%-24s %8d bytes  static aarch64\n' "$f" "$(stat -c %s "$f")"
	fi
done
exit $status
