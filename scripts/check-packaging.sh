#!/usr/bin/env bash
# CI checks of the packaging (buildroot-package/, yocto-layer/, nix/,
# packaging/, docs/) that run without network access to Buildroot, Yocto
# or nixpkgs:
#
#   1. go test ./packaging: Buildroot style (the rules of check-package),
#      OpenEmbedded style, agreement of version, module path, binaries
#      and installed paths across Makefile, Buildroot, Yocto, Nix and the
#      docs, the Nix vendor hash against go.sum, and the documented
#      containerd snippet through containerd's own config parsing;
#   2. nix-instantiate --parse of every .nix file;
#   3. shellcheck of the shell scripts check-package would run it on;
#   4. with BUILDROOT_DIR=<a Buildroot checkout>, Buildroot's own
#      utils/check-package on the BR2_EXTERNAL tree.
#
# As root on Debian it installs the missing tools (the packages nix-bin,
# containerd and shellcheck); otherwise the steps that need them are
# skipped with a message. Exit status: 0 if every step that ran passed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH" GOWORK=off
# nix-bin's default configuration names a build group Debian does not
# create; nothing here builds.
export NIX_CONFIG="build-users-group ="

want=()
command -v nix-instantiate >/dev/null 2>&1 || want+=(nix-bin)
command -v containerd >/dev/null 2>&1 || want+=(containerd)
command -v shellcheck >/dev/null 2>&1 || want+=(shellcheck)
if [ ${#want[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "check-packaging: installing ${want[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
	else
		echo "check-packaging: not installed, steps skipped: ${want[*]}" >&2
	fi
fi

status=0
fail() {
	echo "check-packaging: FAIL: $*" >&2
	status=1
}

echo "== go test ./packaging"
go test -count=1 ./packaging || fail "go test ./packaging"

echo "== nix-instantiate --parse"
if command -v nix-instantiate >/dev/null 2>&1; then
	for f in nix/*.nix; do
		nix-instantiate --parse "$f" >/dev/null || fail "$f does not parse"
	done
else
	echo "skipped: nix-instantiate not installed"
fi

echo "== shellcheck"
if command -v shellcheck >/dev/null 2>&1; then
	scripts=(packaging/S25jailhouse scripts/check-packaging.sh scripts/update-nix-vendor-hash.sh)
	while IFS= read -r f; do
		scripts+=("$f")
	done < <(find buildroot-package -type f \( -name '*.sh' -o -name 'S[0-9][0-9]*' \) | sort)
	shellcheck --external-sources "${scripts[@]}" || fail "shellcheck"
else
	echo "skipped: shellcheck not installed"
fi

if [ -n "${BUILDROOT_DIR:-}" ]; then
	echo "== $BUILDROOT_DIR/utils/check-package -b"
	(cd buildroot-package &&
		find . -type f -print0 | sort -z |
		xargs -0 python3 "$BUILDROOT_DIR/utils/check-package" -b) ||
		fail "Buildroot check-package"

	# Kconfig needs no downloads: every symbol of the defconfig must
	# exist and survive a savedefconfig round trip.
	echo "== Buildroot runphi_qemu_arm64_defconfig round trip"
	out=$(mktemp -d)
	ext=$PWD/buildroot-package
	if make -s -C "$BUILDROOT_DIR" O="$out" BR2_EXTERNAL="$ext" runphi_qemu_arm64_defconfig >/dev/null &&
		make -s -C "$out" savedefconfig BR2_DEFCONFIG="$out/saved_defconfig" >/dev/null; then
		diff -u <(sort "$ext/configs/runphi_qemu_arm64_defconfig") <(sort "$out/saved_defconfig") ||
			fail "runphi_qemu_arm64_defconfig does not survive savedefconfig"
	else
		fail "Buildroot rejects runphi_qemu_arm64_defconfig"
	fi
	rm -rf "$out"
fi

if [ "$status" -eq 0 ]; then
	echo "check-packaging: ok"
fi
exit "$status"
