#!/usr/bin/env bash
# Runs the OCI runtime-tools validation suite (validation/*.t, TAP output)
# twice: against runc directly (the baseline) and against runphi
# configured to forward to that runc. runtime-tools' bundles carry no ZIC
# descriptor and no runphi annotation, so runphi forwards every call and
# the two columns must agree; a difference is a runphi bug.
#
# Run by hand, as root, on a host where runc works (not part of CI: it
# creates real containers, needs the Go module proxy, and takes about two
# minutes with the default per-test timeout). Nothing is written outside
# a temporary directory except runc's own state under /run/runc; runphi's
# state root points into the temporary directory.
#
# Steps: download github.com/opencontainers/runtime-tools (RTT_VERSION,
# default v0.9.0, which has no go.mod: the dependencies are pinned below,
# close to its Godeps) through the Go proxy into a temporary module, build
# runtimetest and every validation test, build runphi from this
# repository, run each test with both runtimes from a directory holding
# runtimetest and rootfs-$GOARCH.tar.gz (shipped for amd64 and 386; for
# other architectures, or with RTT_ROOTFS=busybox, one is made from
# busybox-static, installed with apt-get if missing), and print a table
# of ok / not ok / skip counts per test and runtime.
#
# Caveats: validate.CheckAll fetches the config schema from GitHub, so
# without network access tests calling it report a failure for both
# runtimes; cgroup tests depend on the host's cgroup version.
#
# Output: one line per test with "ok/not ok/skip exit-status" for each
# runtime ("0/0/0 0" is a test that reported neither a test point nor an
# error, which is how poststop.t and prestart_fail.t pass). When the two differ, both run REPEAT (default 10) more times:
# some tests race with the container's process (pidfile.t fails for
# runc itself most of the time), so a test counts as different only if
# no outcome of one runtime ever occurs with the other, else as flaky.
#
# Environment: RUNC (default: runc in $PATH), RTT_VERSION, TEST_TIMEOUT
# (seconds per test, default 60), TESTS (space-separated test names,
# default all), REPEAT, WORK (directory to use and keep; default a new
# temporary one, removed at the end unless KEEP=1). The last TAP output
# of each test is in $WORK/out/<runtime>/<test>.tap. Exit status: 0 if
# no test differs.
set -euo pipefail
export GOWORK=off GOFLAGS=-mod=mod

repo=$(cd "$(dirname "$0")/.." && pwd)
version=${RTT_VERSION:-v0.9.0}
timeout_s=${TEST_TIMEOUT:-60}
runc=${RUNC:-$(command -v runc || true)}
[ -n "$runc" ] || { echo "runtime-tools: no runc in PATH (set RUNC)" >&2; exit 1; }
runc=$(readlink -f "$runc")
[ "$(id -u)" = 0 ] || { echo "runtime-tools: must run as root" >&2; exit 1; }

if [ -n "${WORK:-}" ]; then
	work=$WORK
	mkdir -p "$work"
else
	work=$(mktemp -d /tmp/runtime-tools.XXXXXX)
	[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
fi
echo "runtime-tools: working in $work" >&2

# 1. Sources and dependencies.
mod=$(cd "$work" && go mod download -json "github.com/opencontainers/runtime-tools@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$mod" ] || { echo "runtime-tools: download of $version failed" >&2; exit 1; }
rm -rf "$work/src"
cp -r "$mod" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
if [ ! -f go.mod ]; then
	printf 'module github.com/opencontainers/runtime-tools\n\ngo 1.17\n' >go.mod
	go get \
		github.com/opencontainers/runtime-spec@v1.0.2 \
		github.com/syndtr/gocapability@v0.0.0-20200815063812-42c35b437635 \
		github.com/xeipuuv/gojsonschema@v1.1.0 \
		github.com/xeipuuv/gojsonreference@v0.0.0-20180127040603-bd5ef7bd5415 \
		github.com/xeipuuv/gojsonpointer@v0.0.0-20190905194746-02993c407bfb \
		github.com/mndrix/tap-go@v0.0.0-20171203230836-629fa407e90b \
		github.com/urfave/cli@v1.19.1 \
		github.com/opencontainers/selinux@v1.6.0 \
		github.com/hashicorp/go-multierror@v1.0.0 \
		github.com/sirupsen/logrus@v1.0.4 \
		github.com/mrunalp/fileutils@v0.5.0 \
		github.com/satori/go.uuid@v1.2.0 \
		github.com/blang/semver@v3.5.0+incompatible \
		github.com/stretchr/testify@v1.2.2
fi

# 2. Build.
mkdir -p "$work/bin" "$work/run"
CGO_ENABLED=0 go build -o "$work/run/runtimetest" ./cmd/runtimetest
all=()
for d in validation/*/; do
	n=$(basename "$d")
	[ "$n" = util ] && continue
	all+=("$n")
done
read -r -a tests <<<"${TESTS:-${all[*]}}"
for n in "${tests[@]}"; do
	go build -o "$work/bin/$n.t" "./validation/$n"
done
(cd "$repo" && go build -o "$work/bin/runphi" ./runphi)

# 3. The root filesystem every bundle untars.
arch=$(go env GOARCH)
rootfs=$work/run/rootfs-$arch.tar.gz
if [ "${RTT_ROOTFS:-}" != busybox ] && [ -f "$work/src/rootfs-$arch.tar.gz" ]; then
	cp "$work/src/rootfs-$arch.tar.gz" "$rootfs"
else
	bb=$(command -v busybox || true)
	if [ -z "$bb" ] || ! file -b "$bb" | grep -q 'statically linked'; then
		apt-get install -y busybox-static >/dev/null
		bb=/bin/busybox
	fi
	r=$work/rootfs
	rm -rf "$r"
	mkdir -p "$r"/{bin,dev,etc,proc,sys,tmp}
	cp "$bb" "$r/bin/busybox"
	for a in $("$bb" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
	echo 'root:x:0:' >"$r/etc/group"
	tar -C "$r" -czf "$rootfs" .
fi

# 4. Run. Containers a test leaves behind in runc's root are removed after
# it, so that one test's debris cannot change the next one's result.
before=$("$runc" list -q 2>/dev/null | sort || true)
cleanup() {
	local id
	for id in $(comm -13 <(echo "$before") <("$runc" list -q 2>/dev/null | sort)); do
		"$runc" delete -f "$id" >/dev/null 2>&1 || true
	done
}
# outcome runs test $2 with runtime $1 once, keeps its TAP output in
# $work/out/$1/$2.tap and prints "ok/notok/skip rc". A run that reports
# an error without any test point (the hook tests do) counts as one
# "not ok".
outcome() {
	local rt=$1 n=$2 out=$work/out/$1/$2.tap rc ok notok skip
	if [ "$rt" = runc ]; then
		env RUNTIME="$runc" timeout "$timeout_s" "$work/bin/$n.t" >"$out" 2>"$out.err" && rc=0 || rc=$?
	else
		env RUNTIME="$work/bin/runphi" RUNPHI_RUNC="$runc" RUNPHI_STATE_ROOT="$work/state" \
			timeout "$timeout_s" "$work/bin/$n.t" >"$out" 2>"$out.err" && rc=0 || rc=$?
	fi
	cleanup
	[ "$rc" = 124 ] && rc=timeout
	skip=$(grep -cE '^ok [0-9]+ # (SKIP|skip)' "$out" || true)
	ok=$(grep -cE '^ok [0-9]+' "$out" || true)
	notok=$(grep -cE '^not ok [0-9]+' "$out" || true)
	if [ $((ok + notok)) = 0 ] && grep -q '"error"' "$out"; then
		notok=1
	fi
	echo "$((ok - skip))/$notok/$skip $rc"
}
mkdir -p "$work/out/runc" "$work/out/runphi" "$work/state"
cd "$work/run"
repeat=${REPEAT:-10}
printf '%-32s %-20s %-20s %s\n' test "runc ok/fail/skip rc" "runphi ok/fail/skip rc" ""
diffs=0 flaky=0
tot=(0 0 0 0 0 0)
for n in "${tests[@]}"; do
	a=$(outcome runc "$n")
	b=$(outcome runphi "$n")
	mark=""
	if [ "$a" != "$b" ]; then
		# Some tests race with the container's process (pidfile, start):
		# rerun both and call it a difference only if no outcome of one
		# runtime ever occurs with the other.
		declare -A seen=([runc]="|$a|" [runphi]="|$b|")
		for _ in $(seq "$repeat"); do
			for rt in runc runphi; do
				seen[$rt]+="$(outcome "$rt" "$n")|"
			done
		done
		common=no
		IFS='|' read -r -a list <<<"${seen[runc]}"
		for o in "${list[@]}"; do
			[ -n "$o" ] && [[ ${seen[runphi]} == *"|$o|"* ]] && common=yes
		done
		if [ $common = yes ]; then
			mark="flaky: $((repeat + 1)) runs each, outcomes in common"
			flaky=$((flaky + 1))
		else
			mark="DIFF (runc ${seen[runc]} runphi ${seen[runphi]})"
			diffs=$((diffs + 1))
		fi
		unset seen
	fi
	printf '%-32s %-20s %-20s %s\n' "$n" "$a" "$b" "$mark"
	IFS='/ ' read -r p1 f1 s1 _ <<<"$a"
	IFS='/ ' read -r p2 f2 s2 _ <<<"$b"
	tot=($((tot[0] + p1)) $((tot[1] + f1)) $((tot[2] + s1)) $((tot[3] + p2)) $((tot[4] + f2)) $((tot[5] + s2)))
done
printf '%-32s %-20s %-20s\n' total "${tot[0]}/${tot[1]}/${tot[2]}" "${tot[3]}/${tot[4]}/${tot[5]}"
echo "$((${#tests[@]} - diffs - flaky)) tests same, $flaky flaky, $diffs differ"
echo "runtime-tools $version, runc $("$runc" --version | head -1 | awk '{print $3}'), kernel $(uname -r)" >&2
[ "$diffs" = 0 ]
