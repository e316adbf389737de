//go:build runphi_emu

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/jhctl/emu"
)

// TestLifecycleEmu drives the real binary (this test binary acting as
// runphi, with the emulator compiled in) through a ZIC's life as
// containerd's shim does: create, state, start, kill, delete, then checks
// that the id is runc's again. Run with: go test -tags runphi_emu ./runphi/
func TestLifecycleEmu(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the monitor joins a cgroup: needs root")
	}
	b := newBinHarness(t)
	repo, err := filepath.Abs("..")
	must(t, err)

	emuDir := filepath.Join(b.dir, "emu")
	sys, err := cell.ReadFile(filepath.Join(repo, "boards", "qemu-arm64", "system-zic.json"))
	must(t, err)
	sysBytes, err := sys.System.Marshal()
	must(t, err)
	d, err := emu.InitDir(emuDir, emu.Options{})
	must(t, err)
	must(t, d.Update(func(h *emu.Hypervisor) error { return h.Enable(sysBytes) }))

	cfg := filepath.Join(b.dir, "config-emu.json")
	must(t, os.WriteFile(cfg, []byte(`{"runc": "`+b.runc+`", "state_root": "`+b.dir+`/state", "board_dir": "`+
		filepath.Join(repo, "boards", "qemu-arm64")+`"}`), 0o644))
	env := []string{"RUNPHI_CONFIG=" + cfg, EmuDirEnv + "=" + emuDir, "FAKE_RUNC_EXIT=1"}

	bundle := filepath.Join(b.dir, "bundle")
	must(t, os.MkdirAll(filepath.Join(bundle, "rootfs", "boot"), 0o755))
	must(t, os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"ociVersion":"1.3.0","root":{"path":"rootfs"},"process":{"args":["/boot/boot.bin"],"cwd":"/"},"linux":{}}`), 0o644))
	must(t, os.WriteFile(filepath.Join(bundle, "rootfs", "boot", "config.json"), []byte(`{"os_var":"baremetal","cpus":1,"memory":"16M"}`), 0o644))
	must(t, os.WriteFile(filepath.Join(bundle, "rootfs", "boot", "boot.bin"), make([]byte, 4096), 0o644))

	id := strings.Repeat("f00d", 16)
	logFile := filepath.Join(b.dir, "log.json")
	global := []string{"--root", b.dir + "/k8s.io", "--log", logFile, "--log-format", "json"}
	run := func(args ...string) result { return b.run(t, "", env, append(global, args...)...) }
	state := func() map[string]any {
		r := run("state", id)
		var st map[string]any
		if r.exit != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
			t.Fatalf("state: exit %d stdout %q stderr %q", r.exit, r.stdout, r.stderr)
		}
		return st
	}

	// Whatever fails below, leave no monitor or cell behind.
	t.Cleanup(func() { run("delete", "--force", id) })

	pidFile := filepath.Join(b.dir, "init.pid")
	if r := run("create", "--bundle", bundle, "--pid-file", pidFile, id); r.exit != 0 || r.stdout != "" {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("create: exit %d stdout %q stderr %q log %s", r.exit, r.stdout, r.stderr, log)
	}
	data, err := os.ReadFile(pidFile)
	must(t, err)
	pid, err := strconv.Atoi(string(data))
	must(t, err)
	if st := state(); st["status"] != "created" || st["pid"] != float64(pid) || st["id"] != id {
		t.Errorf("after create: %v, want created with the pid-file pid %d", st, pid)
	}
	if r := run("start", id); r.exit != 0 {
		t.Fatalf("start: exit %d stderr %q", r.exit, r.stderr)
	}
	if st := state(); st["status"] != "running" {
		t.Errorf("after start: %v", st)
	}
	if r := run("exec", "--process", "/p.json", id); r.exit != 1 || !strings.Contains(r.stderr, "not supported for ZICs") {
		t.Errorf("exec: exit %d stderr %q", r.exit, r.stderr)
	}
	if r := run("kill", id, "15"); r.exit != 0 {
		t.Fatalf("kill: exit %d stderr %q", r.exit, r.stderr)
	}
	for deadline := time.Now().Add(10 * time.Second); state()["status"] != "stopped"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not stopped after kill: %v", state())
		}
	}
	if r := run("kill", id, "9"); r.exit != 1 || !strings.Contains(r.stderr, "container not running") {
		t.Errorf("kill of a stopped ZIC: exit %d stderr %q", r.exit, r.stderr)
	}
	if r := run("kill", "--all", id, "9"); r.exit != 0 {
		t.Errorf("kill --all of a stopped ZIC: exit %d stderr %q", r.exit, r.stderr)
	}
	if r := run("delete", id); r.exit != 0 {
		t.Fatalf("delete: exit %d stderr %q", r.exit, r.stderr)
	}
	// The id is runc's again: the call reaches the fake runc unchanged.
	if r := run("state", id); r.exit != 1 || r.stdout != "runc stdout\n" {
		t.Errorf("state after delete: exit %d stdout %q, want the fake runc's", r.exit, r.stdout)
	}
}
