#!/usr/bin/env bash
# Prepares the QEMU integration tests (go test ./integration) on Debian
# bookworm x86_64, run as root. Safe to run again; fast when cached.
#
#  1. installs the host tools: qemu-system-aarch64, kmod (depmod), file;
#  2. enables the arm64 architecture in dpkg/apt;
#  3. downloads, into the cache, Debian's current arm64 kernel package and the
#     arm64 userland the guest needs (containerd, runc, libc, libseccomp,
#     busybox), and extracts only the parts the tests use;
#  4. writes $RUNPHI_CACHE/arm64/current.env, which the Go harness reads.
#
# Cache: $RUNPHI_CACHE, default ${XDG_CACHE_HOME:-$HOME/.cache}/runphi.
#   debs/                    downloaded .deb files
#   arm64/linux-<abi>/       boot/vmlinuz-<abi>, boot/config-<abi>,
#                            lib/modules/<abi>/ (subset, depmod-indexed)
#   arm64/userland-<key>/    merged-/usr tree: containerd, ctr, shim, runc,
#                            busybox, ld.so, libc, libseccomp
#   arm64/current.env        KEY=value lines naming the above
set -euo pipefail

log() { echo "setup-integration: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages)"
[ "$(dpkg --print-architecture)" = amd64 ] || log "warning: tested on amd64 hosts only"

cache=${RUNPHI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runphi}
mkdir -p "$cache/debs" "$cache/arm64"
exec 9>"$cache/.lock"
flock 9 # one setup at a time per cache

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_update() {
	if [ $apt_updated -eq 0 ]; then
		apt-get update -qq
		apt_updated=1
	fi
}

# 1. Host tools. -nic none in the harness avoids the ipxe-qemu ROMs.
host_pkgs=(qemu-system-arm kmod file)
missing=()
for p in "${host_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	apt_update
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. arm64 packages become visible to apt.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	log "adding dpkg architecture arm64"
	dpkg --add-architecture arm64
	apt_updated=0
	apt_update
fi

# Fast path: apt's candidates change only when its lists do, so a manifest
# newer than the lists whose files all exist is still current.
manifest="$cache/arm64/current.env"
if [ -s "$manifest" ] && [ "$manifest" -nt /var/lib/apt/lists ] && [ "${RUNPHI_SETUP_FORCE:-0}" != 1 ]; then
	ok=1
	while IFS='=' read -r key val; do
		case "$key" in KERNEL | MODULES | USERLAND) [ -e "$val" ] || ok=0 ;; esac
	done <"$manifest"
	if [ $ok -eq 1 ]; then
		log "ok: cached ($manifest)"
		exit 0
	fi
fi

user_pkgs=(containerd:arm64 runc:arm64 libc6:arm64 libseccomp2:arm64 busybox-static:arm64)

# candidates fills cand[pkg]=version for the named packages with one
# apt-cache call (each call costs about a second).
declare -A cand
candidates() {
	local line pkg=""
	cand=()
	while IFS= read -r line; do
		case "$line" in
		[!\ ]*:) pkg=${line%:} ;;
		*Candidate:*) cand[$pkg]=${line##*Candidate: } ;;
		esac
	done < <(apt-cache policy "$@" 2>/dev/null)
}
candidate() { echo "${cand[$1]:-}"; }

# The kernel's ABI package name changes with Debian kernel updates.
kernel_pkg() { apt-cache depends linux-image-arm64:arm64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'; }
kpkg=$(kernel_pkg)
if [ -n "$kpkg" ]; then candidates "$kpkg" "${user_pkgs[@]}"; fi
if [ -z "$kpkg" ] || [ -z "$(candidate containerd:arm64)" ] || [ "$(candidate containerd:arm64)" = "(none)" ]; then
	apt_update
	kpkg=$(kernel_pkg)
	[ -n "$kpkg" ] || die "cannot resolve linux-image-arm64:arm64 (is deb.debian.org reachable?)"
	candidates "$kpkg" "${user_pkgs[@]}"
fi
kver=${kpkg%:arm64}
kver=${kver#linux-image-}

# deb_path prints the cached .deb for pkg:arch at its candidate version,
# downloading it first when missing.
deb_path() {
	local pkg=$1 name=${1%:*} ver file
	ver=$(candidate "$pkg")
	if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then die "no candidate for $pkg"; fi
	# apt-get download names files name_version_arch.deb with ':' escaped.
	file="$cache/debs/${name}_${ver//:/%3a}_arm64.deb"
	if [ ! -s "$file" ]; then
		log "downloading $pkg $ver"
		(cd "$cache/debs" && apt-get -qq -o APT::Sandbox::User=root download "$pkg=$ver") >&2
	fi
	[ -s "$file" ] || die "download of $pkg did not produce $file"
	echo "$file"
}

# 3a. Kernel: the Image, its config and the module subtrees the guest loads.
kdir="$cache/arm64/linux-$kver"
if [ ! -e "$kdir/.complete" ]; then
	kdeb=$(deb_path "$kpkg")
	log "extracting ${kpkg%:arm64}"
	rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
	m="./lib/modules/$kver"
	dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$kdir.tmp" --wildcards \
		"./boot/vmlinuz-$kver" "./boot/config-$kver" \
		"$m/modules.order" "$m/modules.builtin" "$m/modules.builtin.modinfo" \
		"$m/kernel/drivers/virtio/*" "$m/kernel/drivers/block/virtio_blk.ko" \
		"$m/kernel/drivers/char/virtio_console.ko" "$m/kernel/drivers/char/hw_random/virtio-rng.ko" \
		"$m/kernel/drivers/net/virtio_net.ko" "$m/kernel/drivers/net/net_failover.ko" "$m/kernel/net/core/failover.ko" \
		"$m/kernel/fs/9p/*" "$m/kernel/net/9p/*" "$m/kernel/fs/netfs/*" "$m/kernel/fs/fscache/*" \
		"$m/kernel/fs/fuse/*" "$m/kernel/fs/overlayfs/*" "$m/kernel/net/vmw_vsock/*"
	depmod -b "$kdir.tmp" "$kver"
	touch "$kdir.tmp/.complete"
	rm -rf "$kdir" && mv "$kdir.tmp" "$kdir"
fi

# 3b. Userland, keyed by the package files so an update re-extracts.
debs=()
for p in "${user_pkgs[@]}"; do debs+=("$(deb_path "$p")"); done
ukey=$(printf '%s\n' "${debs[@]##*/}" | sha256sum | cut -c1-12)
udir="$cache/arm64/userland-$ukey"
if [ ! -e "$udir/.complete" ]; then
	log "extracting userland ($ukey)"
	rm -rf "$udir.tmp" "$udir.raw" && mkdir -p "$udir.tmp/usr" "$udir.raw"
	for d in "${debs[@]}"; do
		dpkg-deb --fsys-tarfile "$d" | tar -x -C "$udir.raw" --wildcards \
			--exclude='./usr/share/*' \
			'./bin/busybox' './usr/bin/containerd' './usr/bin/containerd-shim-runc-v2' './usr/bin/ctr' \
			'./usr/sbin/runc' './lib/aarch64-linux-gnu/ld-linux-aarch64.so.1' \
			'./lib/aarch64-linux-gnu/libc.so.6' './usr/lib/aarch64-linux-gnu/libseccomp.so.2*' \
			2>/dev/null || true # each package holds only some of the patterns
	done
	# Merge /bin and /lib into /usr as a merged-/usr system has them.
	for top in bin lib sbin; do
		if [ -d "$udir.raw/$top" ]; then
			mkdir -p "$udir.raw/usr/$top"
			cp -a "$udir.raw/$top/." "$udir.raw/usr/$top/"
		fi
	done
	cp -a "$udir.raw/usr/." "$udir.tmp/usr/"
	ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$udir.tmp/usr/lib/ld-linux-aarch64.so.1"
	rm -rf "$udir.raw"
	for f in usr/bin/busybox usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/ctr usr/sbin/runc \
		usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 usr/lib/aarch64-linux-gnu/libc.so.6 \
		usr/lib/aarch64-linux-gnu/libseccomp.so.2; do
		[ -e "$udir.tmp/$f" ] || die "userland: $f missing after extraction"
	done
	touch "$udir.tmp/.complete"
	rm -rf "$udir" && mv "$udir.tmp" "$udir"
fi

# 4. The manifest the harness reads (written atomically).
cat >"$manifest.tmp" <<EOF
KERNEL_VERSION=$kver
KERNEL=$kdir/boot/vmlinuz-$kver
KERNEL_CONFIG=$kdir/boot/config-$kver
MODULES=$kdir/lib/modules/$kver
USERLAND=$udir
EOF
mv "$manifest.tmp" "$manifest"

# Drop extracts and packages that are no longer current.
for d in "$cache"/arm64/linux-* "$cache"/arm64/userland-*; do
	[ -d "$d" ] || continue
	case "$d" in "$kdir" | "$udir") ;; *) rm -rf "$d" ;; esac
done
log "ok: kernel $kver, cache $cache"
