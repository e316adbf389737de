#!/bin/sh
#
# Runs after board/zynqmp/post-build.sh, which writes extlinux.conf: adds
# mem=1536M to the kernel command line so that Linux stays in the low DDR
# bank. The high bank holds the Jailhouse hypervisor (0x800000000) and
# the memory runphi gives to ZIC cells.
#

set -e

conf="${BINARIES_DIR}/extlinux.conf"
if ! grep -q ' mem=' "${conf}"; then
	sed -i 's/\(append .*\)$/\1 mem=1536M/' "${conf}"
fi
