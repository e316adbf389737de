// Package guest is what the guest's /init does. As PID 1 (Init) it mounts
// the pseudo file systems, loads the kernel modules the host asked for,
// records the outcome in a boot report, starts itself again as the scenario
// runner (Runner), reaps every orphan until the runner exits, prints the
// final marker and powers the VM off. Running the scenarios in a child keeps
// PID 1 simple: a scenario's panic cannot panic the kernel, and exec.Cmd's
// own waits never race with PID 1's reaping.
package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/integration/marker"
	"github.com/runphi-go/runphi/integration/scenarios"
)

// RunnerArg is argv[1] of the runner process.
const RunnerArg = "runner"

// Env is the environment init gives every process.
func Env() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"TERM=dumb",
	}
}

type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	perm                   os.FileMode
}

// mounts are done in order; devtmpfs must precede /dev/pts and /dev/shm.
func mounts() []mount {
	const nosuid, nodev, noexec = unix.MS_NOSUID, unix.MS_NODEV, unix.MS_NOEXEC
	return []mount{
		{"proc", "/proc", "proc", nosuid | nodev | noexec, "", 0o555},
		{"sysfs", "/sys", "sysfs", nosuid | nodev | noexec, "", 0o555},
		{"devtmpfs", "/dev", "devtmpfs", nosuid, "mode=0755", 0o755},
		{"devpts", "/dev/pts", "devpts", nosuid | noexec, "gid=5,mode=0620,ptmxmode=0666", 0o755},
		{"tmpfs", "/dev/shm", "tmpfs", nosuid | nodev, "mode=1777", 0o1777},
		{"tmpfs", "/run", "tmpfs", nosuid | nodev, "mode=0755", 0o755},
		{"tmpfs", "/tmp", "tmpfs", nosuid | nodev, "mode=1777", 0o1777},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", nosuid | nodev | noexec, "", 0o555},
	}
}

// MountAll mounts the pseudo file systems and returns the failures.
func MountAll() []string {
	var errs []string
	for _, m := range mounts() {
		if err := os.MkdirAll(m.target, m.perm); err != nil {
			errs = append(errs, fmt.Sprintf("mkdir %s: %v", m.target, err))
			continue
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Sprintf("mount %s on %s: %v", m.fstype, m.target, err))
		}
	}
	return errs
}

// Uptime returns the kernel's uptime in seconds, or -1.
func Uptime() float64 {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// KernelRelease returns uname -r.
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// KernelArg returns the value of key=value on a kernel command line.
func KernelArg(cmdline, key string) (string, bool) {
	for _, w := range strings.Fields(cmdline) {
		if k, v, ok := strings.Cut(w, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

func say(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, format+"\n", args...)
}

func printMarker(w io.Writer, e marker.Event) {
	line, err := marker.Format(e)
	if err != nil {
		say(w, "init: %v", err)
		return
	}
	say(w, "%s", line)
}

// Init is PID 1. It never returns: it powers the VM off.
func Init(console *os.File) {
	for _, kv := range Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	report := scenarios.BootReport{Mounts: MountAll(), KernelRelease: KernelRelease(), Uptime: Uptime()}
	if err := LoopbackUp(); err != nil {
		report.Mounts = append(report.Mounts, err.Error())
	}
	printMarker(console, marker.Event{Kind: marker.Boot, Uptime: report.Uptime})
	for _, m := range report.Mounts {
		say(console, "init: %s", m)
	}
	cfg, err := scenarios.ReadConfig(scenarios.ConfigPath)
	if err != nil {
		say(console, "init: %v", err)
		finish(console)
	}
	start := time.Now()
	l := &Loader{Root: "/lib/modules", Release: report.KernelRelease, Load: FinitModule}
	report.Modules = l.LoadAll(cfg.Modules)
	say(console, "init: %d module files loaded in %v", countLoaded(report.Modules), time.Since(start).Round(time.Millisecond))
	for _, m := range report.Modules {
		if m.Error != "" {
			say(console, "init: module %s: %s", m.Name, m.Error)
		}
	}
	if err := writeReport(&report); err != nil {
		say(console, "init: %v", err)
	}
	argv := []string{RunnerArg}
	if cmdline, err := os.ReadFile("/proc/cmdline"); err == nil {
		if v, _ := KernelArg(string(cmdline), KernelArgShell); v == "1" {
			// Debugging: an interactive shell instead of the scenarios.
			argv = []string{"/bin/sh"}
			say(console, "init: %s=1: starting /bin/sh; exit it to power off", KernelArgShell)
		}
	}
	status, err := supervise(console, argv)
	if err != nil {
		say(console, "init: %s: %v", argv[0], err)
	} else if status != 0 {
		say(console, "init: %s exited with status %d", argv[0], status)
	}
	finish(console)
}

// KernelArgShell=1 on the kernel command line makes init start a shell on
// the console instead of the scenario runner.
const KernelArgShell = "runphi.shell"

func countLoaded(ms []scenarios.ModuleResult) int {
	n := 0
	for _, m := range ms {
		if m.Error == "" && m.Path != "" {
			n++
		}
	}
	return n
}

func writeReport(r *scenarios.BootReport) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("boot report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(scenarios.BootReportPath), 0o755); err != nil {
		return fmt.Errorf("boot report: %w", err)
	}
	if err := os.WriteFile(scenarios.BootReportPath, data, 0o644); err != nil {
		return fmt.Errorf("boot report: %w", err)
	}
	return nil
}

// supervise starts the runner (argv [RunnerArg]: this program again) or
// another program and reaps every child until it exits; orphaned daemons
// (containerd shims, ...) are re-parented to PID 1.
func supervise(console *os.File, argv []string) (int, error) {
	prog := argv[0]
	if prog == RunnerArg {
		self, err := os.Executable()
		if err != nil {
			self = "/init"
		}
		prog, argv = self, []string{self, RunnerArg}
	}
	p, err := os.StartProcess(prog, argv, &os.ProcAttr{
		Env:   Env(),
		Files: []*os.File{os.Stdin, console, console},
	})
	if err != nil {
		return 0, err
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait: %w", err)
		}
		if pid != p.Pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}

// finish prints the final marker, syncs and powers off (QEMU then exits).
func finish(console io.Writer) {
	printMarker(console, marker.Event{Kind: marker.Done})
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Not reached on success; a failed power-off leaves the host's timeout.
	for {
		time.Sleep(time.Hour)
	}
}

// Runner is the scenario runner process; it returns its exit status.
func Runner(console io.Writer) int {
	con := scenarios.NewConsole(console)
	cfg, err := scenarios.ReadConfig(scenarios.ConfigPath)
	if err != nil {
		con.Println("runner: " + err.Error())
		return 1
	}
	boot, err := scenarios.ReadBootReport(scenarios.BootReportPath)
	if err != nil {
		con.Println("runner: " + err.Error())
	}
	all := scenarios.All()
	var names []string
	if data, err := os.ReadFile("/proc/cmdline"); err == nil {
		if v, ok := KernelArg(string(data), scenarios.KernelArgRun); ok && v != "" {
			names = strings.Split(v, ",")
		}
	}
	list, err := scenarios.Select(all, names)
	if err != nil {
		con.Println("runner: " + err.Error())
		return 1
	}
	r := &scenarios.Runner{Config: cfg, Boot: boot, Console: con}
	c := r.Run(context.Background(), list)
	con.Println(fmt.Sprintf("runner: %d passed, %d failed, %d skipped", c.Pass, c.Fail, c.Skip))
	if c.Fail > 0 {
		return 1
	}
	return 0
}

// LoopbackUp brings the loopback interface up, as a normal init does:
// containerd's CRI plugin listens on 127.0.0.1 and exits without it.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: get flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: bring lo up: %w", err)
	}
	return nil
}
