package scenarios

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/runphi-go/runphi/integration/ociimage"
)

// shimRuncRoot is the runc --root containerd's runc shim passes for the
// "default" namespace.
const shimRuncRoot = "/run/containerd/runc/default"

// cleanupContainers removes, after a failed scenario, every task and
// container left in containerd, before containerd is stopped.
func (e *Env) cleanupContainers(c *Containerd) {
	ts, err := e.tasks(c, false)
	if err != nil {
		return
	}
	for id := range ts {
		e.Logf("teardown: removing leftover task %s", id)
		if cmd, err := e.CtrCommand(c, "task", "rm", "--force", id); err == nil {
			_, _ = quietOutput(cmd)
		}
	}
	cmd, err := e.CtrCommand(c, "container", "ls", "--quiet")
	if err != nil {
		return
	}
	out, _ := quietOutput(cmd)
	for _, id := range strings.Fields(out) {
		if cmd, err := e.CtrCommand(c, "container", "rm", id); err == nil {
			_, _ = quietOutput(cmd)
		}
	}
}

// startZICContainerd starts containerd with runphi's handler for a ZIC
// scenario and registers the removal of leftover containers.
func (e *Env) startZICContainerd() (*Containerd, error) {
	c, err := e.StartContainerdRunphi()
	if err != nil {
		return nil, err
	}
	e.Cleanup(func() { e.cleanupContainers(c) })
	return c, nil
}

// consoleImage matches jhemu's line about an image a started cell runs.
var consoleImage = regexp.MustCompile(`emu: cell "([^"]+)" \(id \d+\) region \d+ at (0x[0-9a-f]+): (\d+) bytes sha256 ([0-9a-f]{64})`)

// checkConsoleImage reads the hypervisor console and, in the emulated
// tier, checks that jhemu reports the inmate (size and SHA-256) as loaded
// into cell name when it started.
func (h *zicHost) checkConsoleImage(name string, inmate []byte, loud bool) error {
	args := []string{"--device", h.jh.Device, "--sysfs", h.jh.Sysfs, "console"}
	if loud {
		h.e.Logf("$ jhctl %s", strings.Join(args, " "))
	}
	out, err := h.e.Quiet("jhctl", args...)
	if err != nil {
		return err
	}
	if loud {
		// The ring also holds the hypervisor's start-up; show this cell's part.
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, fmt.Sprintf("%q", name)) {
				h.e.Logf("  | %s", l)
			}
		}
	}
	if !strings.Contains(out, fmt.Sprintf("Started cell %q", name)) {
		return fmt.Errorf("hypervisor console lacks %q", fmt.Sprintf("Started cell %q", name))
	}
	if h.e.Mode() != Emulated {
		h.e.Logf("(the real hypervisor does not report image checksums; the inmate prints on the UART)")
		return nil
	}
	sum := sha256.Sum256(inmate)
	want := hex.EncodeToString(sum[:])
	for _, m := range consoleImage.FindAllStringSubmatch(out, -1) {
		if m[1] == name && m[3] == fmt.Sprint(len(inmate)) && m[4] == want {
			h.e.Logf("the cell runs the image's inmate: %s bytes at %s, sha256 %s", m[3], m[2], want)
			return nil
		}
	}
	return fmt.Errorf("hypervisor console: no image of %d bytes with sha256 %s started in cell %s", len(inmate), want, name)
}

// containerdZIC is scenario b: the whole ctr lifecycle of one ZIC.
func containerdZIC(e *Env) (err error) {
	h, err := e.newZICHost()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			h.dumpLog(30)
		}
	}()
	// The guest runs the runphi users install: no emulator compiled in.
	version, err := e.Run("runphi", "--version")
	if err != nil {
		return err
	}
	if strings.Contains(version, "runphi_emu") {
		return fmt.Errorf("runphi in the guest is an emulator build: %q", version)
	}
	c, err := e.startZICContainerd()
	if err != nil {
		return err
	}
	inmate, err := h.inmate()
	if err != nil {
		return err
	}
	const id = "zic-b"
	img := zicImage(id, `{"os_var":"baremetal","memory":"32M","net":false}`, ociimage.File("/boot/boot.bin", inmate, 0o644))
	e.Step("import a ZIC image built here (/boot/config.json + a %d-byte inmate)", len(inmate))
	if err := e.importImage(c, img, id+".tar"); err != nil {
		return err
	}
	e.Step("run it through containerd's runc shim with runphi as the runtime binary")
	if _, err := e.ctrRunZIC(c, img.Name, id); err != nil {
		return err
	}
	cl, err := h.expectRunningZIC(c, id)
	if err != nil {
		return err
	}
	gs, err := grants()
	if err != nil {
		return err
	}
	g, ok := gs[id]
	if !ok || g.CPUs != cl.CPUs {
		return fmt.Errorf("allocator grant of %s: %+v (present %v), want CPUs %s as the cell has", id, g, ok, cl.CPUs)
	}
	e.Logf("grant %s: CPUs %s, RAM %s+%s, loader %s", id, g.CPUs, g.RAM.Start, g.RAM.Size, g.Loader.Start)
	if len(stateDirs(id)) != 1 {
		return fmt.Errorf("state directories of %s: %v, want one", id, stateDirs(id))
	}
	if err := h.checkConsoleImage(id, inmate, false); err != nil {
		return err
	}
	e.Step("stop it: SIGTERM shuts the cell down, the task exits with 143")
	if err := h.stopZIC(c, id); err != nil {
		return err
	}
	return h.checkClean(id)
}

// busyboxImage is a regular container image: the guest's static busybox
// and the links a shell needs.
func (e *Env) busyboxImage(name string) (*ociimage.Image, error) {
	bin, err := e.Bin("busybox")
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	entries := []ociimage.Entry{ociimage.File("/bin/busybox", data, 0o755)}
	for _, l := range []string{"sh", "echo", "cat", "ls", "sleep", "true"} {
		entries = append(entries, ociimage.Symlink("/bin/"+l, "busybox"))
	}
	for _, d := range []string{"/dev", "/proc", "/sys", "/tmp", "/etc", "/root"} {
		entries = append(entries, ociimage.Dir(d))
	}
	return &ociimage.Image{
		Name:         imageRef(name),
		Architecture: runtime.GOARCH,
		Config:       ociimage.Config{Cmd: []string{"echo", "hello from busybox"}, Env: []string{"PATH=/bin"}},
		Entries:      entries,
	}, nil
}

// containerdBusybox is scenario c: a regular container through the runphi
// runtime is runc's, untouched.
func containerdBusybox(e *Env) error {
	jh := Jailhouse{Device: DeviceNode, Sysfs: JhemuSysfs}
	if e.Mode() == Real {
		jh.Sysfs = RealSysfs
	}
	// No hypervisor is needed: runphi hands these calls to runc.
	if err := writeRunphiConfig(e, jh, filepath.Join(e.Dir(), "runphi.log")); err != nil {
		return err
	}
	c, err := e.startZICContainerd()
	if err != nil {
		return err
	}
	img, err := e.busyboxImage("busybox")
	if err != nil {
		return err
	}
	if err := e.importImage(c, img, "busybox.tar"); err != nil {
		return err
	}
	// --no-pivot: the guest's root is the initramfs, which runc cannot
	// pivot_root away from.
	run := []string{"run", "--no-pivot", "--runtime", "io.containerd.runc.v2", "--runc-binary", BinDir + "/runphi"}
	e.Step("a busybox container in the foreground: its output reaches ctr")
	const fg = "busybox-c"
	out, err := e.Ctr(c, append(run, "--rm", img.Name, fg)...)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "hello from busybox") {
		return fmt.Errorf("ctr run output %q lacks the container's hello", out)
	}
	if d := stateDirs(fg); len(d) > 0 {
		return fmt.Errorf("runphi kept state for a runc container: %v", d)
	}

	e.Step("a detached one: runphi forwards create, state, kill and delete to runc")
	const bg = "busybox-c-detached"
	if _, err := e.Ctr(c, append(run, "-d", img.Name, bg, "sleep", "60")...); err != nil {
		return err
	}
	if err := e.waitTask(c, bg, "RUNNING", 20*time.Second); err != nil {
		return err
	}
	// runc itself holds the container, under the shim's root.
	out, err = e.Run("runc", "--root", shimRuncRoot, "state", bg)
	if err != nil {
		return err
	}
	if !strings.Contains(out, `"status": "running"`) {
		return fmt.Errorf("runc state %s: not running: %q", bg, out)
	}
	if d := stateDirs(bg); len(d) > 0 {
		return fmt.Errorf("runphi kept state for a runc container: %v", d)
	}
	if _, err := e.Ctr(c, "task", "kill", "--signal", "SIGKILL", bg); err != nil {
		return err
	}
	if err := e.waitTask(c, bg, "STOPPED", 20*time.Second); err != nil {
		return err
	}
	out, err = e.Ctr(c, "task", "rm", bg)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "exit code 137") {
		return fmt.Errorf("ctr task rm %s: no exit code 137 in %q", bg, out)
	}
	if _, err := e.Ctr(c, "container", "rm", bg); err != nil {
		return err
	}
	if out, err := e.Quiet("runc", "--root", shimRuncRoot, "list", "--quiet"); err != nil || strings.TrimSpace(out) != "" {
		return fmt.Errorf("runc list after rm: %q %v, want no containers", out, err)
	}
	return nil
}

// zicCell is what scenario d compares between cells.
type zicCell struct {
	ID     string
	CPUs   cpuset.Set
	RAM    [2]uint64 // physical start, size
	Loader uint64    // physical start of the loader slot
	BDF    string    // ivshmem-net device
	Shmem  uint64    // physical start of the ivshmem window
}

func (z zicCell) String() string {
	return fmt.Sprintf("%s: CPUs %s, RAM %#x+%s, loader %#x, ivshmem-net %s window %#x",
		z.ID, z.CPUs, z.RAM[0], cell.HumanSize(z.RAM[1]), z.Loader, z.BDF, z.Shmem)
}

// readZICCell decodes the cell configuration runphi created for id (kept
// as cell.cell in its state directory).
func readZICCell(id string) (zicCell, error) {
	dirs := stateDirs(id)
	if len(dirs) != 1 {
		return zicCell{}, fmt.Errorf("state directories of %s: %v, want one", id, dirs)
	}
	data, err := os.ReadFile(filepath.Join(dirs[0], "cell.cell"))
	if err != nil {
		return zicCell{}, err
	}
	c, err := cell.UnmarshalCell(data)
	if err != nil {
		return zicCell{}, fmt.Errorf("%s: %w", id, err)
	}
	z := zicCell{ID: id, CPUs: c.CPUs}
	for _, r := range c.MemRegions {
		switch {
		case r.Flags&cell.MemLoadable != 0 && r.Flags&cell.MemDMA != 0:
			z.RAM = [2]uint64{r.PhysStart, r.Size}
		case r.Flags&cell.MemLoadable != 0:
			z.Loader = r.PhysStart
		}
	}
	for _, d := range c.PCIDevices {
		if d.Type == cell.PCIIvshmem {
			z.BDF = cell.FormatBDF(d.BDF)
			if int(d.ShmemRegionsStart) < len(c.MemRegions) {
				z.Shmem = c.MemRegions[d.ShmemRegionsStart].PhysStart
			}
		}
	}
	if z.RAM[1] == 0 || z.BDF == "" {
		return zicCell{}, fmt.Errorf("cell of %s has no RAM or no ivshmem-net device: %+v", id, z)
	}
	return z, nil
}

// twoZICs is scenario d: two networked ZICs at once, and a third that does
// not fit.
func twoZICs(e *Env) (err error) {
	h, err := e.newZICHost()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			h.dumpLog(30)
		}
	}()
	c, err := e.startZICContainerd()
	if err != nil {
		return err
	}
	inmate, err := h.inmate()
	if err != nil {
		return err
	}
	// 96 MiB each: two fit the pool's 246 MiB, a third does not.
	img := zicImage("zic-net", `{"os_var":"baremetal","net":true,"memory":"96M"}`, ociimage.File("/boot/boot.bin", inmate, 0o644))
	if err := e.importImage(c, img, "zic-net.tar"); err != nil {
		return err
	}
	ids := []string{"zic-d1", "zic-d2"}
	var cells []zicCell
	for _, id := range ids {
		e.Step("run %s (networked, 96 MiB)", id)
		if _, err := e.ctrRunZIC(c, img.Name, id); err != nil {
			return err
		}
		if _, err := h.expectRunningZIC(c, id); err != nil {
			return err
		}
		z, err := readZICCell(id)
		if err != nil {
			return err
		}
		e.Logf("%s", z)
		cells = append(cells, z)
	}
	a, b := cells[0], cells[1]
	switch {
	case !a.CPUs.Intersect(b.CPUs).IsEmpty():
		return fmt.Errorf("CPUs overlap: %s and %s", a, b)
	case a.RAM[0] < b.RAM[0]+b.RAM[1] && b.RAM[0] < a.RAM[0]+a.RAM[1]:
		return fmt.Errorf("RAM overlaps: %s and %s", a, b)
	case a.Loader == b.Loader:
		return fmt.Errorf("same loader slot: %s and %s", a, b)
	case a.BDF == b.BDF || a.Shmem == b.Shmem:
		return fmt.Errorf("same ivshmem-net link: %s and %s", a, b)
	}
	e.Logf("distinct CPUs, RAM, loader slots and ivshmem-net devices")
	gs, err := grants()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if g, ok := gs[id]; !ok || g.Net == nil {
			return fmt.Errorf("allocator grant of %s: %+v, want one with a net link", id, g)
		}
	}

	e.Step("a third copy does not fit: 96 MiB asked, less is left")
	const third = "zic-d3"
	out, err := e.ctrRunZIC(c, img.Name, third)
	if err == nil {
		return fmt.Errorf("%s was created although the pool is short of memory", third)
	}
	if !strings.Contains(out, "largest free block") {
		return fmt.Errorf("ctr run %s failed without the allocator's reason: %q", third, out)
	}
	if _, err := e.Ctr(c, "container", "rm", third); err != nil {
		return err
	}
	listed, err := h.cells()
	if err != nil {
		return err
	}
	if len(listed) != 3 {
		return fmt.Errorf("after the failed %s: cells %v, want the root cell and two ZICs", third, listed)
	}
	if gs, err = grants(); err != nil || len(gs) != 2 {
		return fmt.Errorf("after the failed %s: grants %v (%v), want two", third, gs, err)
	}
	if d := stateDirs(third); len(d) > 0 {
		return fmt.Errorf("after the failed %s: state %v", third, d)
	}
	e.Logf("after the failed %s: still the root cell and two ZICs, two grants, no state of %s", third, third)
	for _, id := range ids {
		if err := h.stopZIC(c, id); err != nil {
			return err
		}
	}
	return h.checkClean(append(ids, third)...)
}

// hostileImages is scenario e: descriptors that try to escape the rootfs
// or ask for absurd resources fail at create, with runphi's reason in
// ctr's output, and leave nothing behind.
func hostileImages(e *Env) (err error) {
	h, err := e.newZICHost()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			h.dumpLog(30)
		}
	}()
	c, err := e.startZICContainerd()
	if err != nil {
		return err
	}
	inmate, err := h.inmate()
	if err != nil {
		return err
	}
	bootBin := ociimage.File("/boot/boot.bin", inmate, 0o644)
	const linkHint = "links must be relative and stay inside the image"
	cases := []struct {
		id, desc string
		entry    ociimage.Entry
		want     string
	}{
		{"e-abs-link", `{"inmate":"/boot/evil.bin"}`, ociimage.Symlink("/boot/evil.bin", "/etc/passwd"), linkHint},
		{"e-rel-link", `{"inmate":"/boot/evil.bin"}`, ociimage.Symlink("/boot/evil.bin", "../../../../../../etc/passwd"), linkHint},
		{"e-dotdot", `{"inmate":"/boot/../../../etc/passwd"}`, bootBin, `must not contain ".."`},
		{"e-memory", `{"memory":"99999T"}`, bootBin, "is larger than the"},
		{"e-bogus-key", `{"os_var":"baremetal","bogus":1}`, bootBin, "unknown key"},
	}
	var ids []string
	for _, tc := range cases {
		e.Step("%s: /boot/config.json %s", tc.id, tc.desc)
		img := zicImage(tc.id, tc.desc, tc.entry)
		if err := e.importImage(c, img, tc.id+".tar"); err != nil {
			return err
		}
		ids = append(ids, tc.id)
		out, err := e.ctrRunZIC(c, img.Name, tc.id)
		if err == nil {
			return fmt.Errorf("%s: the hostile image was created", tc.id)
		}
		if !strings.Contains(out, "invalid ZIC descriptor") && !strings.Contains(out, "image file") {
			return fmt.Errorf("%s: ctr output %q does not carry runphi's reason", tc.id, out)
		}
		if !strings.Contains(out, tc.want) {
			return fmt.Errorf("%s: ctr output %q lacks %q", tc.id, out, tc.want)
		}
		if strings.Contains(out, "root:x:0:0") {
			return fmt.Errorf("%s: a host file's content reached the output", tc.id)
		}
		if _, err := e.Ctr(c, "container", "rm", tc.id); err != nil {
			return err
		}
	}
	return h.checkClean(ids...)
}

// zicSpec is a minimal OCI spec for a ZIC bundle whose rootfs is the
// bundle's rootfs directory.
func zicSpec() *specs.Spec {
	s := BusyboxSpec("rootfs", "/boot/boot.bin")
	s.Root.Readonly = false
	return s
}

// faultSteps are the create steps at which RUNPHI_FAULT can kill runphi
// (runphi/container's FaultSteps), with what the killed create has made by
// then: a state directory always, then a grant, a cell, a monitor.
func faultSteps() []struct {
	step                   string
	grant, cell, monitored bool
} {
	return []struct {
		step                   string
		grant, cell, monitored bool
	}{
		{"after-mkdir", false, false, false},
		{"after-alloc", true, false, false},
		{"after-cellcreate", true, true, false},
		{"after-load", true, true, false},
		{"after-monitor", true, true, true},
		{"after-pidfile", true, true, true},
	}
}

// outputToFile runs cmd like Output does, but with its output in a file:
// a pipe would stay open while the monitor a killed create leaves behind
// holds it, and Wait would wait for that.
func (e *Env) outputToFile(cmd *exec.Cmd, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	e.Logf("$ %s", strings.Join(append([]string{filepath.Base(cmd.Path)}, cmd.Args[1:]...), " "))
	err = cmd.Run()
	if data, rerr := os.ReadFile(path); rerr == nil {
		for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
			if l != "" {
				e.Logf("  | %s", l)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(cmd.Path), err)
	}
	return nil
}

// killedCreate is scenario f: runphi create is SIGKILLed at each step (by
// its own fault injection); delete --force then leaves nothing.
func killedCreate(e *Env) (err error) {
	h, err := e.newZICHost()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			h.dumpLog(30)
		}
	}()
	inmate, err := h.inmate()
	if err != nil {
		return err
	}
	bundle := filepath.Join(e.Dir(), "bundle")
	rootfs := filepath.Join(bundle, "rootfs", "boot")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(rootfs, "config.json"), []byte(`{"os_var":"baremetal","memory":"16M"}`), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(rootfs, "boot.bin"), inmate, 0o644); err != nil {
		return err
	}
	if err := WriteBundle(bundle, zicSpec()); err != nil {
		return err
	}
	root := filepath.Join(e.Dir(), "runc-root")
	for _, fs := range faultSteps() {
		id := "f-" + fs.step
		e.Step("runphi create %s, killed %s (RUNPHI_FAULT=create:%s)", id, fs.step, fs.step)
		cmd, err := e.Command("runphi", "--root", root, "create", "--bundle", bundle, "--pid-file", filepath.Join(e.Dir(), id+".pid"), id)
		if err != nil {
			return err
		}
		cmd.Env = append(os.Environ(), "RUNPHI_FAULT=create:"+fs.step)
		err = e.outputToFile(cmd, filepath.Join(e.Dir(), id+".out"))
		if err == nil || !strings.Contains(err.Error(), "signal: killed") {
			return fmt.Errorf("create with fault %s: %v, want it killed", fs.step, err)
		}
		// The fault must have struck where it says: what is there now
		// is what create had made.
		gs, err := grants()
		if err != nil {
			return err
		}
		cells, err := h.cells()
		if err != nil {
			return err
		}
		_, hasGrant := gs[id]
		_, hasCell := cells[id]
		monitored := len(monitorPids(id)) > 0
		left := fmt.Sprintf("state %v, grant %v, cell %v, monitor %v", len(stateDirs(id)) == 1, hasGrant, hasCell, monitored)
		e.Logf("the killed create left: %s", left)
		if len(stateDirs(id)) != 1 || hasGrant != fs.grant || hasCell != fs.cell || monitored != fs.monitored {
			return fmt.Errorf("create killed %s left %s; want state true, grant %v, cell %v, monitor %v", fs.step, left, fs.grant, fs.cell, fs.monitored)
		}
		if _, err := e.Run("runphi", "--root", root, "delete", "--force", id); err != nil {
			return err
		}
		if err := h.checkClean(id); err != nil {
			return err
		}
	}
	return nil
}
