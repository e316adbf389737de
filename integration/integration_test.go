package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runphi-go/runphi/integration/guestimage"
	"github.com/runphi-go/runphi/integration/harness"
	"github.com/runphi-go/runphi/integration/marker"
	"github.com/runphi-go/runphi/integration/scenarios"
	"github.com/runphi-go/runphi/integration/tier"
)

// TestQEMU boots the guest once per tier and reports each scenario as a
// subtest: TestQEMU/emulated/boot, TestQEMU/real/containerd-smoke, ...
func TestQEMU(t *testing.T) {
	if os.Getenv("RUNPHI_INTEGRATION") != "1" {
		t.Skip("QEMU integration tests are off: run scripts/setup-integration.sh, then RUNPHI_INTEGRATION=1 go test ./integration/ (make integration)")
	}
	if err := scenarios.Check(scenarios.All()); err != nil {
		t.Fatal(err)
	}
	selected, err := selectScenarios()
	if err != nil {
		t.Fatal(err)
	}
	qemuBin := os.Getenv("RUNPHI_QEMU")
	if qemuBin == "" {
		qemuBin = harness.DefaultQEMU
	}
	if _, err := exec.LookPath(qemuBin); err != nil {
		t.Fatalf("%s not found (%v): run scripts/setup-integration.sh", qemuBin, err)
	}
	in, err := guestimage.ResolveInputs()
	if err != nil {
		t.Fatal(err)
	}

	modRoot, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	built := tier.Build(t.Context(), modRoot, t.TempDir())
	t.Logf("built %d arm64 binaries in %v; missing: %v", len(built.Paths), time.Since(start).Round(time.Millisecond), built.Missing)
	for name, msg := range built.Failed {
		t.Errorf("building %s for arm64 failed:\n%s", name, msg)
	}
	if _, ok := built.Paths["init"]; !ok {
		t.Fatalf("no guest init: %s", built.Missing["init"])
	}

	t.Run("emulated", func(t *testing.T) {
		runTier(t, tier.Emulated(modRoot, built, *in), selected)
	})

	t.Run("real", func(t *testing.T) {
		dir := os.Getenv(tier.ImageEnv)
		if dir == "" {
			t.Skip("real Jailhouse tier off: set " + tier.ImageEnv + " to a directory with Image and rootfs.cpio (see integration/README.md)")
		}
		runTier(t, tier.Real(modRoot, dir, built, *in), selected)
	})
}

// selectScenarios applies RUNPHI_SCENARIOS (comma-separated names).
func selectScenarios() ([]scenarios.Scenario, error) {
	var names []string
	if v := os.Getenv("RUNPHI_SCENARIOS"); v != "" {
		names = strings.Split(v, ",")
	}
	return scenarios.Select(scenarios.All(), names)
}

// runTier composes the tier's initramfs, boots it and turns the console
// markers into subtests.
func runTier(t *testing.T, tr *tier.Tier, selected []scenarios.Scenario) {
	dir := t.TempDir()
	if keep := os.Getenv("RUNPHI_KEEP_INITRAMFS"); keep != "" {
		// Kept for booting by hand with the logged QEMU command line.
		dir = filepath.Join(keep, string(tr.Mode))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img, err := tr.Compose(dir, os.Getenv("RUNPHI_INITRAMFS_GZIP") == "1")
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Lacks) > 0 {
		t.Errorf("rootfs.cpio lacks %s; scenarios needing them will fail", strings.Join(img.Lacks, ", "))
	}
	t.Logf("initramfs %s: %.1f MiB, %d entries, composed in %v", img.Path, float64(img.Size)/(1<<20), img.Entries, img.Took.Round(time.Millisecond))

	o, err := tr.Options(img.Path, scenarios.Names(selected))
	if err != nil {
		t.Fatal(err)
	}
	argv, err := o.Cmdline()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("$ %s", harness.Quoted(argv))

	var rep marker.Report
	res, err := harness.Run(t.Context(), o, func(l marker.Line) {
		rep.Add(l)
		t.Logf("[%7.3fs] %s", l.At.Seconds(), l.Text)
	})
	if err != nil {
		t.Fatal(err)
	}
	summarize(t, &rep, res)

	for _, s := range selected {
		t.Run(s.Name, func(t *testing.T) { reportScenario(t, &rep, res, s.Name) })
	}
}

// summarize logs the timings and fails the tier when the guest did not
// finish cleanly.
func summarize(t *testing.T, rep *marker.Report, res *harness.Result) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "VM ran %v", res.Duration.Round(time.Millisecond))
	if rep.Booted {
		fmt.Fprintf(&b, "; init started %.3fs after QEMU (guest uptime %.3fs)", rep.BootAt.Seconds(), rep.BootUptime)
	}
	for _, s := range rep.Scenarios {
		fmt.Fprintf(&b, "\n  %-20s %-4v %8v %s", s.Name, s.Result, s.Duration().Round(time.Millisecond), s.Reason)
	}
	t.Log(b.String())
	switch {
	case res.TimedOut:
		t.Errorf("guest killed after the VM timeout (%v; RUNPHI_VM_TIMEOUT)%s", res.Duration.Round(time.Second), tail(rep.Lines, 30))
	case !rep.Booted:
		t.Errorf("guest init never started (QEMU: %v)%s", res.ExitErr, tail(rep.Lines, 40))
	case !rep.Done:
		t.Errorf("guest ended without RUNPHI-DONE (QEMU: %v)%s", res.ExitErr, tail(rep.Lines, 40))
	case res.ExitErr != nil:
		t.Errorf("QEMU exited with %v after RUNPHI-DONE", res.ExitErr)
	}
}

func reportScenario(t *testing.T, rep *marker.Report, res *harness.Result, name string) {
	s := rep.Lookup(name)
	switch {
	case s == nil && res.TimedOut:
		t.Fatalf("not run: the VM was killed by its timeout before %s started", name)
	case s == nil:
		t.Fatalf("no result: the guest never started %s (see the console log of the parent test)", name)
	case s.Result == 0 && res.TimedOut:
		t.Fatalf("hung: %s was running when the VM was killed by its timeout%s", name, tail(s.Lines, 40))
	case s.Result == 0:
		t.Fatalf("no result: %s started but never ended%s", name, tail(s.Lines, 40))
	case s.Result == marker.Skip:
		t.Skip(s.Reason)
	case s.Result == marker.Fail:
		t.Fatalf("%s%s", s.Reason, tail(s.Lines, 80))
	}
	t.Logf("passed in %v (host clock)", s.Duration().Round(time.Millisecond))
}

// tail renders the last n lines for an error message.
func tail(lines []marker.Line, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b strings.Builder
	b.WriteString("\nguest console:")
	for _, l := range lines {
		fmt.Fprintf(&b, "\n  [%7.3fs] %s", l.At.Seconds(), l.Text)
	}
	return b.String()
}
