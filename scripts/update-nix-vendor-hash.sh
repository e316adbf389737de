#!/usr/bin/env bash
# Recomputes the vendorHash of nix/package.nix: the NAR hash (SRI form) of
# what `go mod vendor` writes for the current go.mod, go.sum and imports,
# which is what buildGoModule's fixed-output derivation records. Run it
# after `go mod tidy` or any change of dependencies or imports.
#
# Uses nix-hash (Debian: apt-get install nix-bin) when installed, else the
# same computation in Go (go test ./packaging -run TestNixVendorHash).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH" GOWORK=off GOTOOLCHAIN=local
pkg=nix/package.nix

old=$(sed -n 's/.*vendorHash = "\(sha256-[^"]*\)";.*/\1/p' "$pkg")
[ -n "$old" ] || { echo "update-nix-vendor-hash: no vendorHash in $pkg" >&2; exit 1; }

if command -v nix-hash >/dev/null 2>&1; then
	tmp=$(mktemp -d)
	trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
	# A copy, so that go mod vendor cannot touch the checkout.
	mkdir "$tmp/src"
	tar --exclude=./.git --exclude=./bin --exclude=./vendor --exclude='*.test' -cf - . |
		tar -xf - -C "$tmp/src"
	(cd "$tmp/src" && GOFLAGS=-mod=mod go mod vendor -o "$tmp/vendor")
	hex=$(NIX_CONFIG='build-users-group =' nix-hash --type sha256 "$tmp/vendor")
	# SRI: "sha256-" and the base64 of the raw digest.
	new="sha256-$(printf '%b' "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | base64 -w0)"
else
	echo "update-nix-vendor-hash: nix-hash not installed; computing the NAR hash in Go" >&2
	out=$(go test -count=1 -run '^TestNixVendorHash$' ./packaging 2>&1 || true)
	new=$(printf '%s\n' "$out" | sed -n 's/.*go mod vendor gives \(sha256-[A-Za-z0-9+\/=]*\).*/\1/p' | head -n1)
	if [ -z "$new" ]; then
		if printf '%s\n' "$out" | grep -q '^ok'; then
			new=$old
		else
			printf '%s\n' "$out" >&2
			exit 1
		fi
	fi
fi

if [ "$new" = "$old" ]; then
	echo "vendorHash unchanged: $old"
	exit 0
fi
sed -i "s|vendorHash = \"$old\";|vendorHash = \"$new\";|" "$pkg"
echo "vendorHash: $old -> $new"
