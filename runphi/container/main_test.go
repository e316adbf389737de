package container

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/cellgen/alloc"
	"github.com/runphi-go/runphi/cellgen/board"
	"github.com/runphi-go/runphi/runphi/monitor"
	"github.com/runphi-go/runphi/runphi/state"
)

// The test binary doubles as the monitor and as a create process: the
// environment says which.
const (
	roleEnv   = "RUNPHI_TEST_ROLE"   // "monitor" or "create"
	fakeEnv   = "RUNPHI_TEST_FAKE"   // fake hypervisor directory
	emuEnv    = "RUNPHI_TEST_EMU"    // jhctl/emu directory (instead of the fake)
	createEnv = "RUNPHI_TEST_CREATE" // JSON createJob for the create role
)

// createJob is what the create role runs.
type createJob struct {
	Env   testEnvConfig
	ID    string
	Opts  CreateOpts
	Fault string
}

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "monitor":
		// argv: test binary, monitor.Verb, state dir
		var hv monitor.Hypervisor = newFakeHV(os.Getenv(fakeEnv))
		if dir := os.Getenv(emuEnv); dir != "" {
			hv = emuClient(dir)
		}
		os.Exit(monitor.Main(os.Args[2:], monitor.Deps{Hypervisor: hv, Interval: 10 * time.Millisecond}))
	case "create":
		os.Exit(createRole())
	}
	os.Exit(m.Run())
}

func createRole() int {
	var job createJob
	if err := json.Unmarshal([]byte(os.Getenv(createEnv)), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	mgr, err := job.Env.manager(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	mgr.o.Fault = job.Fault
	if err := mgr.Create(context.Background(), job.Opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testEnvConfig locates everything a Manager of the test environment
// uses; it is JSON so that create processes can rebuild the same one.
type testEnvConfig struct {
	Root       string
	Fake       string
	CgroupRoot string
	BoardDir   string
	Loader     string
}

func (c testEnvConfig) manager(hv *fakeHV) (*Manager, error) {
	if hv == nil {
		hv = newFakeHV(c.Fake)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return New(Options{
		StateRoot:      c.Root,
		BoardDir:       c.BoardDir,
		Hypervisor:     hv,
		LinuxLoader:    c.Loader,
		MonitorCommand: []string{exe, monitor.Verb},
		MonitorEnv:     []string{roleEnv + "=monitor", fakeEnv + "=" + c.Fake},
		CgroupRoot:     c.CgroupRoot,
		ReadyTimeout:   10 * time.Second,
		Fault:          "none",
	})
}

// env is one test's world: a state root, a fake hypervisor, a fake cgroup
// v2 tree, the qemu-arm64 board.
type env struct {
	t   testing.TB
	cfg testEnvConfig
	hv  *fakeHV
	m   *Manager
	dir string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvIn(t, t.TempDir())
}

// newEnvIn builds the environment in dir.
func newEnvIn(t testing.TB, dir string) *env {
	t.Helper()
	cfg := testEnvConfig{
		Root:       filepath.Join(dir, "root"),
		Fake:       filepath.Join(dir, "jailhouse"),
		CgroupRoot: filepath.Join(dir, "cgroup"),
		BoardDir:   filepath.Join("..", "..", "boards", "qemu-arm64"),
	}
	abs, err := filepath.Abs(cfg.BoardDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BoardDir = abs
	if err := os.MkdirAll(cfg.CgroupRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cgroup.controllers", "cgroup.procs"} {
		if err := os.WriteFile(filepath.Join(cfg.CgroupRoot, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, cfg: cfg, hv: newFakeHV(cfg.Fake), dir: dir}
	if e.m, err = cfg.manager(e.hv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)
	return e
}

// cleanup kills whatever monitors a failed test left.
func (e *env) cleanup() {
	ids, _ := e.m.store.IDs()
	for _, id := range ids {
		_ = e.m.Delete(id, true)
	}
	e.m.mu.Lock()
	ids = ids[:0]
	for id := range e.m.children {
		ids = append(ids, id)
	}
	e.m.mu.Unlock()
	for _, id := range ids {
		e.m.killChild(id)
	}
}

// bundleOpts shape a test bundle.
type bundleOpts struct {
	desc       string // /boot/config.json
	inmate     []byte // /boot/boot.bin (default 4 KiB of zeros)
	memory     int64  // linux.resources.memory.limit, 0: unset
	cgroupPath string // default /test/<bundle name>
}

// bundle writes a bundle with a ZIC rootfs and returns its directory.
func (e *env) bundle(name string, o bundleOpts) string {
	e.t.Helper()
	b := filepath.Join(e.dir, "bundles", name)
	boot := filepath.Join(b, "rootfs", "boot")
	if err := os.MkdirAll(boot, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if o.desc == "" {
		o.desc = `{"os_var":"baremetal"}`
	}
	if o.inmate == nil {
		o.inmate = make([]byte, 4096)
	}
	if o.cgroupPath == "" {
		o.cgroupPath = "/test/" + name
	}
	if err := os.WriteFile(filepath.Join(boot, "config.json"), []byte(o.desc), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(boot, "boot.bin"), o.inmate, 0o644); err != nil {
		e.t.Fatal(err)
	}
	spec := &specs.Spec{
		Version:     specs.Version,
		Root:        &specs.Root{Path: "rootfs"},
		Process:     &specs.Process{Args: []string{"/boot/boot.bin"}},
		Annotations: map[string]string{"org.runphi.runtime": "zic"},
		Linux:       &specs.Linux{CgroupsPath: o.cgroupPath},
	}
	if o.memory != 0 {
		spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &o.memory}}
	}
	data, err := json.Marshal(spec)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return b
}

// stdio returns files for a container's stdout and stderr.
func (e *env) stdio(id string) (stdout, stderr *os.File) {
	e.t.Helper()
	var err error
	if stdout, err = os.Create(filepath.Join(e.dir, id+".out")); err != nil {
		e.t.Fatal(err)
	}
	if stderr, err = os.Create(filepath.Join(e.dir, id+".err")); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { stdout.Close(); stderr.Close() })
	return stdout, stderr
}

func (e *env) opts(id, bundle string) CreateOpts {
	out, errf := e.stdio(id)
	return CreateOpts{ID: id, Bundle: bundle, PidFile: filepath.Join(bundle, "init.pid"), Stdout: out, Stderr: errf}
}

func (e *env) create(id string, o bundleOpts) CreateOpts {
	e.t.Helper()
	co := e.opts(id, e.bundle(id, o))
	if err := e.m.Create(context.Background(), co); err != nil {
		e.t.Fatalf("Create(%s): %v", id, err)
	}
	return co
}

func (e *env) status(id string) specs.ContainerState {
	e.t.Helper()
	s, err := e.m.State(id)
	if err != nil {
		e.t.Fatalf("State(%s): %v", id, err)
	}
	return s.Status
}

// waitStatus polls until id reaches want.
func (e *env) waitStatus(id string, want specs.ContainerState) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.status(id)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("status of %s = %s, want %s", id, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) grants() map[string]alloc.Grant {
	e.t.Helper()
	b, err := board.Load(e.cfg.BoardDir)
	if err != nil {
		e.t.Fatal(err)
	}
	g, err := alloc.Open(e.m.o.AllocState, b.Pool).Grants()
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

// cgroupPids returns every pid written to a cgroup.procs of the fake tree.
func (e *env) cgroupPids() []int {
	var pids []int
	filepath.WalkDir(e.cfg.CgroupRoot, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" {
			data, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(data)) {
				if n, err := strconv.Atoi(f); err == nil {
					pids = append(pids, n)
				}
			}
		}
		return nil
	})
	return pids
}

// assertNothingLeft checks that no trace of the ids remains: state
// directory, cell, grant, cgroup directory, live monitor.
func (e *env) assertNothingLeft(ids ...string) {
	e.t.Helper()
	cells := e.hv.cells()
	grants := e.grants()
	for _, id := range ids {
		if e.m.Exists(id) {
			e.t.Errorf("%s: state directory left", id)
		}
		if _, ok := cells[state.CellName(id)]; ok {
			e.t.Errorf("%s: cell left", id)
		}
		if _, ok := grants[id]; ok {
			e.t.Errorf("%s: grant left", id)
		}
	}
	for _, id := range ids {
		// No monitor of the id runs (it may take a moment to exit).
		for _, pid := range monitorsOf(e.m.store.Dir(id)) {
			p, err := state.ProcessOf(pid)
			if err == nil && !waitGone(p, 5*time.Second) {
				e.t.Errorf("%s: monitor pid %d still alive", id, pid)
			}
		}
		if _, err := os.Stat(filepath.Join(e.cfg.CgroupRoot, "test", id)); !os.IsNotExist(err) {
			e.t.Errorf("%s: cgroup directory left", id)
		}
	}
}

// monitorsOf returns the pids of processes whose last argument is dir:
// the monitors of the container with that state directory.
func monitorsOf(dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + en.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
		if len(args) > 1 && args[len(args)-1] == dir {
			pids = append(pids, pid)
		}
	}
	return pids
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// go-runc's ReadPidFile: Atoi of the whole file, no trimming.
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatalf("pid file %q: %v", data, err)
	}
	return pid
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func netListenUnix(path string) (*net.UnixListener, error) {
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}

// receivePty accepts one connection and returns the name sent with the
// pty master and the master ("", -1 if no descriptor came).
func receivePty(l *net.UnixListener) (string, int) {
	conn, err := l.AcceptUnix()
	if err != nil {
		return "", -1
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return "", -1
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return "", -1
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return "", -1
	}
	return string(buf[:n]), fds[0]
}
