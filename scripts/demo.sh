#!/usr/bin/env bash
# The main job, narrated: boot the QEMU arm64 guest and run a ZIC through
# containerd and runphi in it, printing each step as it happens. Jailhouse
# is emulated (jhemu serves /dev/jailhouse over CUSE) unless
# RUNPHI_JAILHOUSE_IMAGE names a directory with a Jailhouse-capable Image
# and rootfs.cpio; then the real hypervisor runs the cell
# (integration/README.md).
#
# Run as root: the first run installs QEMU and caches Debian's arm64 kernel
# and userland (scripts/setup-integration.sh); later runs reuse the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

printf '==> set up QEMU and the cached Debian arm64 kernel, containerd, runc and busybox\n'
scripts/setup-integration.sh
go run ./integration/cmd/demo
printf '\nThe full suite (scenarios a-f, both tiers): RUNPHI_INTEGRATION=1 go test -v ./integration/\n'
