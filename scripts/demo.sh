#!/usr/bin/env bash
# The main job, narrated: turn container images into Jailhouse cells for
# boards/qemu-arm64 with cellgen — allocate, encode, check — and show what
# runphi does at `create` time, without hardware.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

board=boards/qemu-arm64
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "Build cellgen and jhctl for this machine"
run make --no-print-directory build >/dev/null
cellgen=bin/cellgen

step "The board: root cell, ZIC pool, reference demos"
run $cellgen check $board/system.json $board/demos/inmate-demo.json $board/demos/linux-demo.json
run $cellgen encode $board/system.json -o "$work/qemu-arm64.cell"
printf 'qemu-arm64.cell: %s bytes, sha256 %s (upstream Jailhouse builds the same bytes)\n' \
	"$(stat -c %s "$work/qemu-arm64.cell")" "$(sha256sum "$work/qemu-arm64.cell" | cut -d' ' -f1)"
printf 'pool: %s\n' "$(tr -d '\n ' <$board/pool.json | cut -c1-160)..."

# make_bundle DIR CPUS MEMORY DESCRIPTOR: an OCI bundle whose rootfs is a ZIC image.
make_bundle() {
	local dir=$1 cpus=$2 mem=$3 desc=$4
	mkdir -p "$dir/rootfs/boot"
	printf '%s\n' "$desc" >"$dir/rootfs/boot/config.json"
	head -c 8192 /dev/urandom >"$dir/rootfs/boot/boot.bin"
	cat >"$dir/config.json" <<JSON
{"ociVersion":"1.2.0","root":{"path":"rootfs"},"process":{"args":["/boot/boot.bin"],"cwd":"/"},
 "linux":{"resources":{"cpu":{"cpus":"$cpus"},"memory":{"limit":$mem}}}}
JSON
}

step "Two ZIC images: a Zephyr-style inmate and a bare-metal one, both networked"
make_bundle "$work/zephyr" "" 67108864 '{"os_var":"zephyr","inmate":"/boot/boot.bin","starting_vaddress":"0x70000000"}'
make_bundle "$work/bare" "3-4" 33554432 '{"os_var":"baremetal","console":"virtual"}'
run cat "$work/zephyr/rootfs/boot/config.json"

step "Allocate and generate each cell (what runphi does at create), sharing one allocator state"
state="$work/alloc.json"
run $cellgen zic --board $board --bundle "$work/zephyr" --state "$state" --name zic-zephyr -o "$work/zic-zephyr.cell"
run $cellgen zic --board $board --bundle "$work/bare" --state "$state" --name zic-bare -o "$work/zic-bare.cell"
ls -l "$work"/*.cell

step "The grants recorded in the allocator state (flock + atomic rename)"
run cat "$state"

step "Both cells checked together against the root cell the pool uses"
run $cellgen check $board/system-zic.json "$work/zic-zephyr.cell" "$work/zic-bare.cell"

step "One cell, decoded back to JSON"
run $cellgen decode "$work/zic-zephyr.cell"

step "A third ZIC asking for more memory than is left fails cleanly, changing nothing"
make_bundle "$work/huge" "" $((512 * 1024 * 1024)) '{"os_var":"freertos"}'
before=$(sha256sum "$state")
if $cellgen zic --board $board --bundle "$work/huge" --state "$state" --name zic-huge -o "$work/zic-huge.cell"; then
	echo "demo: the oversized ZIC was unexpectedly accepted" >&2; exit 1
fi
[ "$before" = "$(sha256sum "$state")" ] && [ ! -e "$work/zic-huge.cell" ] && echo "state unchanged, no cell file written"

step "A hostile image whose inmate escapes the rootfs is refused"
make_bundle "$work/hostile" "" 67108864 '{"os_var":"baremetal","inmate":"/boot/evil.bin"}'
ln -s /etc/shadow "$work/hostile/rootfs/boot/evil.bin"
if $cellgen zic --board $board --bundle "$work/hostile" --state "$state" --name zic-hostile -o "$work/x.cell"; then
	echo "demo: the hostile ZIC was unexpectedly accepted" >&2; exit 1
fi

step "Done: the same steps run for real inside runphi (see README)"
