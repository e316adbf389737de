#!/usr/bin/env bash
# Installs what building and testing runphi needs on a fresh Debian bookworm
# machine (run as root). Safe to run again.
set -euo pipefail
pkgs=(make git file gcc binutils ca-certificates containerd runc nix-bin shellcheck)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		echo "setup: Go is in /usr/local/go/bin; add it to PATH" >&2
	else
		echo "setup: Go 1.26 or newer is required (https://go.dev/doc/install)" >&2
	fi
	exit 1
fi
echo "setup: ok ($(go version))"
