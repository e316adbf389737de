#!/bin/sh
#
# Writes start-qemu.sh next to the images. The machine options are the
# ones Jailhouse's qemu-arm64 root cell is written for: GICv3 without an
# ITS, CPUs starting at EL2, 16 CPUs, 1 GiB of RAM of which Linux may use
# only the first 768 MiB (the rest holds the hypervisor and the cells).
#

set -e

script="${BINARIES_DIR}/start-qemu.sh"
cat >"${script}" <<'END'
#!/bin/sh
# Boots the runphi QEMU image; extra arguments go to QEMU.
cd "$(dirname "$0")" || exit 1
exec qemu-system-aarch64 \
	-machine virt,gic-version=3,virtualization=on,its=off \
	-cpu cortex-a57 -smp 16 -m 1G -nographic \
	-kernel Image \
	-append "root=/dev/vda rw console=ttyAMA0 mem=768M" \
	-drive file=rootfs.ext4,if=none,format=raw,id=hd0 \
	-device virtio-blk-device,drive=hd0 \
	-netdev user,id=eth0 -device virtio-net-device,netdev=eth0 \
	"$@"
END
chmod 0755 "${script}"
