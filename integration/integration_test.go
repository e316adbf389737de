package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/runphi-go/runphi/integration/guestimage"
	"github.com/runphi-go/runphi/integration/harness"
	"github.com/runphi-go/runphi/integration/initramfs"
	"github.com/runphi-go/runphi/integration/marker"
	"github.com/runphi-go/runphi/integration/scenarios"
)

// tier is one way of running the scenarios.
type tier struct {
	mode      scenarios.Mode
	kernel    string
	initramfs string // written by prepare
	qemu      []harness.Option
}

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
	built := guestimage.Build(t.Context(), goBinary(), modRoot, t.TempDir(), guestimage.Binaries())
	t.Logf("built %d arm64 binaries in %v; missing: %v", len(built.Paths), time.Since(start).Round(time.Millisecond), built.Missing)
	for name, msg := range built.Failed {
		t.Errorf("building %s for arm64 failed:\n%s", name, msg)
	}
	if _, ok := built.Paths["init"]; !ok {
		t.Fatalf("no guest init: %s", built.Missing["init"])
	}

	t.Run("emulated", func(t *testing.T) {
		all, req := guestimage.EmulatedModules()
		spec := guestimage.Spec{
			Mode: scenarios.Emulated, Binaries: built, Inputs: *in, Modules: all, Required: req,
			BoardsDir: filepath.Join(modRoot, "boards"),
		}
		runTier(t, spec, "", selected, harness.WithSMP(2))
	})

	t.Run("real", func(t *testing.T) {
		dir := os.Getenv("RUNPHI_JAILHOUSE_IMAGE")
		if dir == "" {
			t.Skip("real Jailhouse tier off: set RUNPHI_JAILHOUSE_IMAGE to a directory with Image and rootfs.cpio (see integration/README.md)")
		}
		kernel, base := filepath.Join(dir, "Image"), filepath.Join(dir, "rootfs.cpio")
		all, req := guestimage.RealModules()
		real := *in
		real.Kernel, real.Modules, real.Release = kernel, "", ""
		spec := guestimage.Spec{
			Mode: scenarios.Real, Binaries: built, Inputs: real, Modules: all, Required: req,
			BoardsDir: filepath.Join(modRoot, "boards"),
		}
		// jailhouse-abi.md §10: 16 CPUs (the root cell's CPU set), 1 GiB
		// with Linux kept below 768 MiB, no ITS.
		runTier(t, spec, base, selected,
			harness.WithMachine("virt,gic-version=3,virtualization=on,its=off"),
			harness.WithSMP(16), harness.WithAppendKernel("mem=768M"))
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

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// runTier composes the initramfs (appended to base when base is set), boots
// it and turns the console markers into subtests.
func runTier(t *testing.T, spec guestimage.Spec, base string, selected []scenarios.Scenario, opts ...harness.Option) {
	start := time.Now()
	if base != "" {
		idx, err := initramfs.Index(base)
		if err != nil {
			t.Fatal(err)
		}
		spec.Base = idx
		checkJailhouseRootfs(t, idx)
	}
	a, err := guestimage.Compose(spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if keep := os.Getenv("RUNPHI_KEEP_INITRAMFS"); keep != "" {
		// Kept for booting by hand with the logged QEMU command line.
		dir = filepath.Join(keep, string(spec.Mode))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "initramfs.cpio")
	compression := initramfs.None
	if os.Getenv("RUNPHI_INITRAMFS_GZIP") == "1" {
		compression, img = initramfs.Gzip, img+".gz"
	}
	if base != "" {
		err = initramfs.Append(img, base, a)
	} else {
		err = a.WriteFile(img, compression)
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("initramfs %s: %.1f MiB, %d entries, composed in %v", img, float64(fi.Size())/(1<<20), len(a.Names()), time.Since(start).Round(time.Millisecond))

	names := scenarios.Names(selected)
	opts = append([]harness.Option{harness.WithKernel(spec.Inputs.Kernel), harness.WithInitramfs(img)}, opts...)
	if len(names) != len(scenarios.All()) {
		opts = append(opts, harness.WithAppendKernel(scenarios.KernelArgRun+"="+strings.Join(names, ",")))
	}
	opts = append(opts, harness.FromEnv())
	o, err := harness.New(opts...)
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

// checkJailhouseRootfs reports what the real tier's rootfs lacks before
// spending a boot on it.
func checkJailhouseRootfs(t *testing.T, idx map[string]os.FileMode) {
	t.Helper()
	var hasModule bool
	for name := range idx {
		if strings.HasPrefix(name, "lib/modules/") && filepath.Base(name) == "jailhouse.ko" {
			hasModule = true
		}
	}
	var missing []string
	if !hasModule {
		missing = append(missing, "jailhouse.ko under lib/modules")
	}
	for _, p := range []string{"lib/firmware/jailhouse.bin", "usr/libexec/jailhouse/linux-loader.bin"} {
		if _, ok := idx[p]; !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Errorf("rootfs.cpio lacks %s; scenarios needing them will fail", strings.Join(missing, ", "))
	}
}
