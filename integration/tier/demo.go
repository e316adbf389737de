package tier

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/runphi-go/runphi/integration/guestimage"
	"github.com/runphi-go/runphi/integration/harness"
	"github.com/runphi-go/runphi/integration/marker"
)

// DemoScenario is the narrated scenario Demo runs.
const DemoScenario = "demo"

// Demo boots the guest with the narrated demo scenario and prints what
// happens to w as it happens: the host's steps, then the guest's console
// (its "==>" narration, the commands and their output), with the harness's
// markers turned into sentences. It uses the real tier when
// RUNPHI_JAILHOUSE_IMAGE is set, the emulated one otherwise. The error
// says why the demo did not pass.
func Demo(ctx context.Context, w io.Writer, modRoot string) error {
	say := func(format string, args ...any) { fmt.Fprintf(w, "==> "+format+"\n", args...) }
	in, err := guestimage.ResolveInputs()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "runphi-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	say("build runphi, jhctl, cellgen, jhemu and the guest's init as static arm64 binaries")
	start := time.Now()
	built := Build(ctx, modRoot, work)
	if failed := slices.Sorted(maps.Keys(built.Failed)); len(failed) > 0 {
		return fmt.Errorf("building %s for arm64 failed:\n%s", failed[0], built.Failed[failed[0]])
	}
	fmt.Fprintf(w, "built %s in %v\n", strings.Join(slices.Sorted(maps.Keys(built.Paths)), ", "), time.Since(start).Round(100*time.Millisecond))

	t := Emulated(modRoot, built, *in)
	if dir := os.Getenv(ImageEnv); dir != "" {
		t = Real(modRoot, dir, built, *in)
	}
	say("compose the guest's initramfs for the %s tier: our binaries, Debian's containerd, runc and busybox, boards/", t.Mode)
	img, err := t.Compose(work, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %.1f MiB, %d entries\n", img.Path, float64(img.Size)/(1<<20), img.Entries)
	for _, l := range img.Lacks {
		fmt.Fprintf(w, "warning: the rootfs lacks %s\n", l)
	}
	o, err := t.Options(img.Path, []string{DemoScenario})
	if err != nil {
		return err
	}
	argv, err := o.Cmdline()
	if err != nil {
		return err
	}
	say("boot the QEMU arm64 guest (TCG, %d vCPUs, EL2 for Jailhouse) and run the demo in it", o.SMP)
	fmt.Fprintf(w, "$ %s\n", harness.Quoted(argv))

	var rep marker.Report
	res, err := harness.Run(ctx, o, func(l marker.Line) {
		rep.Add(l)
		if s := Narrate(l.Text); s != "" {
			fmt.Fprintln(w, s)
		}
	})
	if err != nil {
		return err
	}
	s := rep.Lookup(DemoScenario)
	switch {
	case res.TimedOut:
		return fmt.Errorf("the guest was killed after %v (RUNPHI_VM_TIMEOUT)", res.Duration.Round(time.Second))
	case s == nil:
		return fmt.Errorf("the guest never ran the demo (QEMU: %v)", res.ExitErr)
	case s.Result != marker.Pass:
		return fmt.Errorf("the demo did not pass: %v %s", s.Result, s.Reason)
	}
	say("the demo passed: guest up %.1fs after QEMU started, demo %v, VM %v",
		rep.BootAt.Seconds(), s.Duration().Round(100*time.Millisecond), res.Duration.Round(100*time.Millisecond))
	return nil
}

// Narrate returns how the demo shows one console line: markers become
// sentences, the end marker and the kernel's power-off line disappear,
// everything else is shown as is.
func Narrate(line string) string {
	if ev, ok := marker.Parse(line); ok {
		switch ev.Kind {
		case marker.Boot:
			return fmt.Sprintf("(guest init started, uptime %.1fs)", ev.Uptime)
		case marker.Start:
			return fmt.Sprintf("(scenario %s starts)", ev.Scenario)
		case marker.Pass:
			return fmt.Sprintf("(scenario %s passed)", ev.Scenario)
		case marker.Fail:
			return fmt.Sprintf("(scenario %s FAILED: %s)", ev.Scenario, ev.Reason)
		case marker.Skip:
			return fmt.Sprintf("(scenario %s skipped: %s)", ev.Scenario, ev.Reason)
		}
		return ""
	}
	if strings.HasSuffix(line, "reboot: Power down") {
		return ""
	}
	return line
}
