#!/usr/bin/env bash
# Measures what runphi adds to a call it forwards to runc.
#
# Three commands run the same forwarded runc call (state of an unknown id,
# and list of an empty --root):
#   runc    runc itself
#   bare    a static Go program that does nothing but exec runc
#   runphi  runphi, which scans argv, reads its config, stats its state
#           directory and execs runc
# Goal: runphi's median <= bare's median + 1 ms.
#
# By default a small Go program times the three commands interleaved (one
# run of each per round), so that load from other processes, which drifts
# over seconds, hits all three alike. BENCH_TOOL=hyperfine uses hyperfine
# instead (BENCH_INSTALL=1 installs it with apt-get); it runs each
# command's batch in turn. Environment: RUNC (default: runc in PATH), RUNS
# (default 500).
set -euo pipefail
# The throwaway modules below live in a temporary directory; a go.work
# above it must not claim them.
export GOWORK=off

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-500}
tool=${BENCH_TOOL:-go}
runc=${RUNC:-$(command -v runc || true)}
[ -n "$runc" ] || { echo "bench-forward: no runc in PATH (set RUNC)" >&2; exit 1; }

if [ "$tool" = hyperfine ] && ! command -v hyperfine >/dev/null && [ "${BENCH_INSTALL:-0}" = 1 ]; then
	apt-get install -y hyperfine >/dev/null 2>&1 || true
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bare" "$tmp/timer" "$tmp/root" "$tmp/state"

# The bare wrapper: the least any Go program can do before exec'ing runc.
cat >"$tmp/bare/main.go" <<EOF
package main

import (
	"os"
	"syscall"
)

func main() {
	args := append([]string{"$runc"}, os.Args[1:]...)
	if err := syscall.Exec("$runc", args, os.Environ()); err != nil {
		os.Exit(127)
	}
}
EOF
printf 'module bare\n\ngo 1.22\n' >"$tmp/bare/go.mod"

(cd "$tmp/bare" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp/bare-runc" .)
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp/runphi" ./runphi)

# runphi's configuration: the same runc, a private state root.
printf '{"runc": "%s", "state_root": "%s"}\n' "$runc" "$tmp/state" >"$tmp/config.json"
export RUNPHI_CONFIG="$tmp/config.json"

echo "runc:   $runc ($("$runc" --version | head -1))"
echo "runphi: $(stat -c %s "$tmp/runphi") bytes; bare: $(stat -c %s "$tmp/bare-runc") bytes; rounds: $runs"

# Sanity: runphi must forward (runc's own error text and exit status).
set +e
want=$("$runc" --root "$tmp/root" state nonexistent-id 2>&1); wst=$?
got=$("$tmp/runphi" --root "$tmp/root" state nonexistent-id 2>&1); gst=$?
set -e
if [ "$wst" != "$gst" ] || [ "${want#*level=error}" != "${got#*level=error}" ]; then
	echo "bench-forward: runphi did not forward: runc=$wst '$want' runphi=$gst '$got'" >&2
	exit 1
fi

scenarios=(
	"state nonexistent-id"
	"list"
)

if [ "$tool" = hyperfine ]; then
	command -v hyperfine >/dev/null || { echo "bench-forward: hyperfine not installed" >&2; exit 1; }
	for s in "${scenarios[@]}"; do
		echo
		echo "== $s (hyperfine, $runs runs each)"
		hyperfine -N -i --warmup 20 --runs "$runs" --export-json "$tmp/h.json" \
			-n runc "$runc --root $tmp/root $s" \
			-n bare "$tmp/bare-runc --root $tmp/root $s" \
			-n runphi "$tmp/runphi --root $tmp/root $s" >/dev/null 2>"$tmp/h.err" ||
			{ cat "$tmp/h.err" >&2; exit 1; }
		jq -r '.results | map({(.command): .median * 1000}) | add |
			"  runc    median \(.runc * 100 | round / 100) ms\n  bare    median \(.bare * 100 | round / 100) ms\n  runphi  median \(.runphi * 100 | round / 100) ms\n  runphi - bare \((.runphi - .bare) * 100 | round / 100) ms (goal <= 1 ms)"' "$tmp/h.json"
	done
	exit 0
fi

# The Go timer: interleaved rounds, medians.
cat >"$tmp/timer/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

type command struct {
	name string
	argv []string
	ms   []float64
}

func main() {
	runs, err := strconv.Atoi(os.Args[1])
	if err != nil || runs < 10 {
		fmt.Fprintln(os.Stderr, "timer: want at least 10 rounds")
		os.Exit(2)
	}
	var cmds []*command
	for _, spec := range os.Args[2:] {
		name, line, _ := strings.Cut(spec, "=")
		cmds = append(cmds, &command{name: name, argv: strings.Fields(line)})
	}
	const warmup = 20
	for i := 0; i < warmup+runs; i++ {
		for _, c := range cmds {
			start := time.Now()
			_ = exec.Command(c.argv[0], c.argv[1:]...).Run() // the exit status is runc's
			if i >= warmup {
				c.ms = append(c.ms, float64(time.Since(start).Nanoseconds())/1e6)
			}
		}
	}
	med := map[string]float64{}
	for _, c := range cmds {
		slices.Sort(c.ms)
		med[c.name] = c.ms[len(c.ms)/2]
		fmt.Printf("  %-7s median %6.2f ms  p10 %6.2f  p90 %6.2f\n", c.name, med[c.name], c.ms[len(c.ms)/10], c.ms[len(c.ms)*9/10])
	}
	fmt.Printf("  bare - runc   %+6.2f ms\n", med["bare"]-med["runc"])
	fmt.Printf("  runphi - runc %+6.2f ms\n", med["runphi"]-med["runc"])
	d := med["runphi"] - med["bare"]
	verdict := "met"
	if d > 1 {
		verdict = "NOT met"
	}
	fmt.Printf("  runphi - bare %+6.2f ms  (goal <= +1 ms: %s)\n", d, verdict)
}
GO
printf 'module timer\n\ngo 1.22\n' >"$tmp/timer/go.mod"
(cd "$tmp/timer" && go build -o "$tmp/timer-bin" .)
for s in "${scenarios[@]}"; do
	echo
	echo "== $s (interleaved, $runs rounds)"
	"$tmp/timer-bin" "$runs" \
		"runc=$runc --root $tmp/root $s" \
		"bare=$tmp/bare-runc --root $tmp/root $s" \
		"runphi=$tmp/runphi --root $tmp/root $s"
done
