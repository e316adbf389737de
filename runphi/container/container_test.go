package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bundlepkg "github.com/runphi-go/runphi/cellgen/bundle"
	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/jhctl/jailhouse"
	"github.com/runphi-go/runphi/runphi/state"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestLifecycleTerm(t *testing.T) {
	e := newEnv(t)
	co := e.create("zic-a", bundleOpts{})

	s, err := e.m.State("zic-a")
	if err != nil {
		t.Fatal(err)
	}
	pid := readPid(t, co.PidFile)
	if s.Status != specs.StateCreated || s.Pid != pid || s.Bundle != co.Bundle {
		t.Errorf("state after create = %+v, want created with pid %d", s, pid)
	}
	if c := e.hv.cells()["zic-a"]; c.State != string(jailhouse.StateShutDown) || c.Images != 1 {
		t.Errorf("cell after create = %+v, want loaded (1 image) and not started", c)
	}
	if pids := e.cgroupPids(); !slices_contains(pids, pid) {
		t.Errorf("cgroup pids %v do not include the monitor %d", pids, pid)
	}
	if ps, err := e.m.Ps("zic-a"); err != nil || len(ps) != 1 || ps[0] != pid {
		t.Errorf("Ps = %v, %v; want [%d]", ps, err, pid)
	}

	if err := e.m.Start("zic-a"); err != nil {
		t.Fatal(err)
	}
	if got := e.status("zic-a"); got != specs.StateRunning {
		t.Errorf("status after start = %s", got)
	}
	if err := e.m.Start("zic-a"); !errors.Is(err, ErrNotCreated) {
		t.Errorf("second Start = %v, want ErrNotCreated", err)
	}

	if err := e.m.Kill("zic-a", unix.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if code, err := e.m.Wait("zic-a"); err != nil || code != 143 {
		t.Errorf("monitor exit = %d, %v; want 143", code, err)
	}
	// The monitor learns of the TERM before it can see the shutdown, so
	// it does not report a shutdown "outside runphi" in the container log.
	if logged, _ := os.ReadFile(filepath.Join(e.dir, "zic-a.err")); strings.Contains(string(logged), "outside runphi") {
		t.Errorf("container stderr after kill TERM = %q", logged)
	}
	s, err = e.m.State("zic-a")
	if err != nil || s.Status != specs.StateStopped || s.Pid != 0 {
		t.Errorf("state after kill = %+v, %v; want stopped, pid 0", s, err)
	}
	if err := e.m.Kill("zic-a", unix.SIGTERM, false); !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "container not running") {
		t.Errorf("kill on stopped = %v, want \"container not running\"", err)
	}
	if err := e.m.Kill("zic-a", unix.SIGKILL, true); err != nil {
		t.Errorf("kill --all on stopped = %v, want nil", err)
	}
	if err := e.m.Start("zic-a"); !errors.Is(err, ErrNotCreated) {
		t.Errorf("start on stopped = %v, want ErrNotCreated", err)
	}
	if err := e.m.Delete("zic-a", false); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft("zic-a")
	if err := e.m.Delete("zic-a", false); !errors.Is(err, ErrNotExist) {
		t.Errorf("second delete = %v, want ErrNotExist", err)
	}
	if err := e.m.Delete("zic-a", true); err != nil {
		t.Errorf("delete --force of a deleted container = %v", err)
	}
}

func slices_contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestKillKill(t *testing.T) {
	e := newEnv(t)
	e.create("zic-k", bundleOpts{})
	if err := e.m.Start("zic-k"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Kill("zic-k", unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if code, err := e.m.Wait("zic-k"); err != nil || code != 137 {
		t.Errorf("monitor exit = %d, %v; want 137", code, err)
	}
	if _, ok := e.hv.cells()["zic-k"]; ok {
		t.Error("kill KILL left the cell")
	}
	if got := e.status("zic-k"); got != specs.StateStopped {
		t.Errorf("status = %s, want stopped", got)
	}
	if err := e.m.Delete("zic-k", false); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft("zic-k")
}

func TestKillSignals(t *testing.T) {
	e := newEnv(t)
	e.create("zic-s", bundleOpts{})
	if err := e.m.Kill("zic-s", 0, false); err != nil {
		t.Errorf("signal 0 on created = %v", err)
	}
	err := e.m.Kill("zic-s", unix.SIGUSR1, false)
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "SIGUSR1") {
		t.Errorf("SIGUSR1 = %v, want not supported naming the signal", err)
	}
	if got := e.status("zic-s"); got != specs.StateCreated {
		t.Errorf("an unsupported signal changed the status to %s", got)
	}
	// TERM on a created container ends it without starting the cell.
	if err := e.m.Kill("zic-s", unix.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.m.Wait("zic-s"); code != 143 {
		t.Errorf("exit = %d, want 143", code)
	}
	if err := e.m.Kill("zic-s", 0, false); !errors.Is(err, ErrNotRunning) {
		t.Errorf("signal 0 on stopped = %v, want ErrNotRunning", err)
	}
	if err := e.m.Delete("zic-s", false); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft("zic-s")
}

func TestDeleteCreatedAndRunning(t *testing.T) {
	e := newEnv(t)
	// containerd deletes containers that were never started.
	e.create("zic-c", bundleOpts{})
	wait := e.m.waiter("zic-c")
	if err := e.m.Delete("zic-c", false); err != nil {
		t.Fatalf("delete on created = %v", err)
	}
	if code, _ := wait(); code != 137 {
		t.Errorf("monitor of a deleted created container exited %d, want 137", code)
	}
	e.assertNothingLeft("zic-c")

	e.create("zic-r", bundleOpts{})
	if err := e.m.Start("zic-r"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Delete("zic-r", false); !errors.Is(err, ErrRunning) {
		t.Errorf("delete on running = %v, want ErrRunning", err)
	}
	if got := e.status("zic-r"); got != specs.StateRunning {
		t.Errorf("refused delete changed status to %s", got)
	}
	wait = e.m.waiter("zic-r")
	if err := e.m.Delete("zic-r", true); err != nil {
		t.Fatal(err)
	}
	if code, _ := wait(); code != 137 {
		t.Errorf("monitor of a force-deleted running container exited %d, want 137", code)
	}
	e.assertNothingLeft("zic-r")
}

func TestUnknownID(t *testing.T) {
	e := newEnv(t)
	for name, err := range map[string]error{
		"state":  func() error { _, err := e.m.State("nope"); return err }(),
		"start":  e.m.Start("nope"),
		"kill":   e.m.Kill("nope", unix.SIGTERM, false),
		"delete": e.m.Delete("nope", false),
		"ps":     func() error { _, err := e.m.Ps("nope"); return err }(),
	} {
		if !errors.Is(err, ErrNotExist) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("%s on an unknown id = %v, want \"does not exist\"", name, err)
		}
	}
	if err := e.m.Delete("nope", true); err != nil {
		t.Errorf("delete --force on an unknown id = %v", err)
	}
	if e.m.Exists("nope") || e.m.Exists("../x") {
		t.Error("Exists reports unknown ids")
	}
}

func TestDoubleCreate(t *testing.T) {
	e := newEnv(t)
	e.create("zic-d", bundleOpts{})
	co := e.opts("zic-d", e.bundle("zic-d2", bundleOpts{}))
	err := e.m.Create(context.Background(), co)
	if !errors.Is(err, ErrExist) {
		t.Errorf("second create = %v, want ErrExist", err)
	}
	if got := e.status("zic-d"); got != specs.StateCreated {
		t.Errorf("the first container is %s after a refused create", got)
	}
	if len(e.hv.cells()) != 1 || len(e.grants()) != 1 {
		t.Errorf("cells %v grants %v, want one each", e.hv.cells(), sortedKeys(e.grants()))
	}
}

func TestLongID(t *testing.T) {
	e := newEnv(t)
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	e.create(id, bundleOpts{})
	s, err := e.m.State(id)
	if err != nil || s.ID != id {
		t.Fatalf("State = %+v, %v; want the full id back", s, err)
	}
	if _, ok := e.hv.cells()[state.CellName(id)]; !ok || len(s.Cell) > 31 {
		t.Errorf("cell %q not created", s.Cell)
	}
	if _, ok := e.grants()[id]; !ok {
		t.Error("grant not keyed by the full id")
	}
	if err := e.m.Delete(id, false); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(id)
}

// A cell of the same name that runphi did not create (here: made before
// the container, as another namespace's container with this id would) is
// not destroyed by the rollback of a create that failed with EEXIST.
func TestCreateRollbackKeepsForeignCell(t *testing.T) {
	e := newEnv(t)
	co := e.opts("zic-x", e.bundle("zic-x", bundleOpts{}))
	foreign := &cell.Cell{Arch: cell.ArchARM64, Name: state.CellName("zic-x"), CPUs: cpuset.Of(9)}
	data, err := foreign.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.hv.CreateCell(data); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Create(context.Background(), co); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Create = %v, want the driver's 'already exists'", err)
	}
	if _, ok := e.hv.cells()["zic-x"]; !ok {
		t.Error("the rollback destroyed a cell runphi did not create")
	}
}

func TestCreateRollback(t *testing.T) {
	tests := []struct {
		name string
		prep func(e *env, o *bundleOpts, co *CreateOpts)
		want string
	}{
		{"no descriptor", func(e *env, o *bundleOpts, co *CreateOpts) {
			os.Remove(filepath.Join(co.Bundle, "rootfs", "boot", "config.json"))
		}, "no ZIC descriptor"},
		{"bad descriptor", func(e *env, o *bundleOpts, co *CreateOpts) {
			os.WriteFile(filepath.Join(co.Bundle, "rootfs", "boot", "config.json"), []byte(`{"vcpus":2}`), 0o644)
		}, "vcpus"},
		{"too much memory", func(e *env, o *bundleOpts, co *CreateOpts) {
			os.WriteFile(filepath.Join(co.Bundle, "rootfs", "boot", "config.json"), []byte(`{"memory":"1G"}`), 0o644)
		}, "allocate"},
		{"inmate larger than the loader slot", func(e *env, o *bundleOpts, co *CreateOpts) {
			os.WriteFile(filepath.Join(co.Bundle, "rootfs", "boot", "boot.bin"), make([]byte, 0x20000), 0o644)
		}, "image"},
		{"CreateCell fails", func(e *env, o *bundleOpts, co *CreateOpts) {
			e.hv.failOn(jailhouse.OpCreate, &jailhouse.Error{Op: jailhouse.OpCreate, Kind: jailhouse.ErrCPUBusy, Msg: "CPU 1 is busy"})
		}, "CPU 1 is busy"},
		{"CreateCell fails after the cell was created", func(e *env, o *bundleOpts, co *CreateOpts) {
			e.hv.afterCreate = &jailhouse.Error{Op: jailhouse.OpCreate, Msg: "cell 'zic-f' was not created (not listed in sysfs)"}
		}, "was not created"},
		{"LoadCell fails", func(e *env, o *bundleOpts, co *CreateOpts) {
			e.hv.failOn(jailhouse.OpLoad, &jailhouse.Error{Op: jailhouse.OpLoad, Kind: jailhouse.ErrImage, Msg: "image 0 does not fit"})
		}, "does not fit"},
		{"monitor cannot start", func(e *env, o *bundleOpts, co *CreateOpts) {
			e.m.o.MonitorCommand = []string{filepath.Join(e.dir, "no-such-binary")}
		}, "monitor"},
		{"monitor exits during setup", func(e *env, o *bundleOpts, co *CreateOpts) {
			e.m.o.MonitorCommand = []string{"/bin/sh", "-c", "exit 3"}
		}, "exited during setup"},
		{"cgroup not writable", func(e *env, o *bundleOpts, co *CreateOpts) {
			os.WriteFile(filepath.Join(e.cfg.CgroupRoot, "blocker"), nil, 0o644)
			spec := readSpecT(e.t, co.Bundle)
			spec.Linux.CgroupsPath = "/blocker/x"
			co.Spec = spec
		}, "cgroup"},
		{"pid file directory missing", func(e *env, o *bundleOpts, co *CreateOpts) {
			co.PidFile = filepath.Join(e.dir, "missing", "init.pid")
		}, "pid file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var o bundleOpts
			co := e.opts("zic-f", e.bundle("zic-f", o))
			tc.prep(e, &o, &co)
			err := e.m.Create(context.Background(), co)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Create = %v, want an error containing %q", err, tc.want)
			}
			e.assertNothingLeft("zic-f")
			if _, err := os.Stat(co.PidFile); !os.IsNotExist(err) {
				t.Errorf("pid file left: %v", err)
			}
			e.m.mu.Lock()
			n := len(e.m.children)
			e.m.mu.Unlock()
			if n != 0 {
				t.Errorf("%d monitors not reaped", n)
			}
		})
	}
}

func readSpecT(t testing.TB, bundle string) *specs.Spec {
	t.Helper()
	spec, err := bundlepkg.ReadSpec(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestStateJSONGolden(t *testing.T) {
	e := newEnv(t)
	co := e.create("zic-g", bundleOpts{})
	s, err := e.m.State("zic-g")
	if err != nil {
		t.Fatal(err)
	}
	// Replace what differs between runs.
	if s.Created.IsZero() || time.Since(s.Created) > time.Minute {
		t.Errorf("created = %v, want the create time", s.Created)
	}
	s.Created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if s.Pid <= 0 {
		t.Fatalf("pid %d", s.Pid)
	}
	s.Pid = 4242
	s.Bundle = strings.Replace(s.Bundle, e.dir, "/tmp/test", 1)
	s.Rootfs = strings.Replace(s.Rootfs, e.dir, "/tmp/test", 1)
	got, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "state.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("state JSON =\n%s\nwant\n%s", got, want)
	}
	_ = co
}

func TestPidFileFormat(t *testing.T) {
	e := newEnv(t)
	co := e.create("zic-p", bundleOpts{})
	data, err := os.ReadFile(co.PidFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(data, "\n \t") {
		t.Errorf("pid file %q has whitespace", data)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatal(err)
	}
	// The pid is a child of create (here: this process), so a
	// subreaper parent of create would reap it.
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if fields[1] != strconv.Itoa(os.Getpid()) {
		t.Errorf("monitor's parent is %s, want create (%d)", fields[1], os.Getpid())
	}
	ents, _ := os.ReadDir(filepath.Dir(co.PidFile))
	for _, en := range ents {
		if strings.HasPrefix(en.Name(), ".") {
			t.Errorf("temporary file %s left", en.Name())
		}
	}
}

func TestMonitorSeesCellEnd(t *testing.T) {
	tests := []struct {
		name string
		end  func(e *env)
		want int
		log  string
	}{
		{"cell failed", func(e *env) {
			e.hv.setState("", jailhouse.CellRef{ID: -1, Name: "zic-m"}, jailhouse.StateFailed)
		}, 1, "failed"},
		{"cell destroyed outside runphi", func(e *env) {
			e.hv.DestroyCell(jailhouse.CellRef{ID: -1, Name: "zic-m"})
		}, 137, "no longer exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.create("zic-m", bundleOpts{})
			if err := e.m.Start("zic-m"); err != nil {
				t.Fatal(err)
			}
			tc.end(e)
			if code, _ := e.m.Wait("zic-m"); code != tc.want {
				t.Errorf("exit = %d, want %d", code, tc.want)
			}
			if got := e.status("zic-m"); got != specs.StateStopped {
				t.Errorf("status = %s", got)
			}
			logged, _ := os.ReadFile(filepath.Join(e.dir, "zic-m.err"))
			if !strings.Contains(string(logged), tc.log) {
				t.Errorf("container stderr = %q, want %q", logged, tc.log)
			}
			if err := e.m.Delete("zic-m", false); err != nil {
				t.Fatal(err)
			}
			e.assertNothingLeft("zic-m")
		})
	}
}

func TestVirtualConsoleToStdout(t *testing.T) {
	e := newEnv(t)
	e.hv.writeConsole("Created cell \"other\"\n")
	e.create("zic-v", bundleOpts{desc: `{"console":"virtual"}`})
	if err := e.m.Start("zic-v"); err != nil {
		t.Fatal(err)
	}
	e.hv.writeConsole("Hello 1 from cell!\n")
	out := filepath.Join(e.dir, "zic-v.out")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(out)
		if string(data) == "Hello 1 from cell!\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container stdout = %q", data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.m.Delete("zic-v", true); err != nil {
		t.Fatal(err)
	}
}

func TestParallelCreates(t *testing.T) {
	e := newEnv(t)
	b, err := e.m.loadBoard()
	if err != nil {
		t.Fatal(err)
	}
	capacity := b.Pool.CPUs.Len() // 2 MiB each: CPUs run out first
	const n = 32
	if capacity >= n {
		t.Fatalf("pool has %d CPUs, the test needs fewer than %d", capacity, n)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	ids := make([]string, n)
	for i := range n {
		ids[i] = "par-" + strconv.Itoa(i)
		co := e.opts(ids[i], e.bundle(ids[i], bundleOpts{desc: `{"net":false}`, memory: 2 << 20}))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.m.Create(context.Background(), co)
		}()
	}
	wg.Wait()
	ok := 0
	var failed []string
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case strings.Contains(err.Error(), "CPU"):
			failed = append(failed, ids[i])
		default:
			t.Errorf("%s: unexpected error %v", ids[i], err)
		}
	}
	if ok != capacity {
		t.Errorf("%d creates succeeded, want exactly %d", ok, capacity)
	}
	e.assertNothingLeft(failed...)
	if g := e.grants(); len(g) != capacity {
		t.Errorf("%d grants, want %d", len(g), capacity)
	}
	for i, err := range errs {
		if err == nil {
			if err := e.m.Delete(ids[i], true); err != nil {
				t.Error(err)
			}
		}
	}
	e.assertNothingLeft(ids...)
}

func TestList(t *testing.T) {
	e := newEnv(t)
	e.create("b", bundleOpts{})
	e.create("a", bundleOpts{})
	// A directory from a create that died before writing state.
	if err := os.Mkdir(filepath.Join(e.cfg.Root, "c"), 0o700); err != nil {
		t.Fatal(err)
	}
	list, err := e.m.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.ID+":"+string(s.Status))
	}
	want := []string{"a:created", "b:created", "c:stopped"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("List = %v, want %v", got, want)
	}
	// Corrupt state: listed as stopped; delete --force destroys the cell
	// by the name the id determines, and the monitor, waiting for a
	// start that cannot come, sees its cell go and exits.
	if err := os.WriteFile(filepath.Join(e.cfg.Root, "b", state.StateFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	list, err = e.m.List()
	if err != nil || len(list) != 3 || list[1].Status != specs.StateStopped {
		t.Fatalf("List with corrupt state = %v, %v", list, err)
	}
	if err := e.m.Delete("b", false); !errors.Is(err, state.ErrCorrupt) {
		t.Errorf("delete of corrupt state without force = %v, want ErrCorrupt", err)
	}
	if err := e.m.Delete("b", true); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.m.Wait("b"); code != 137 {
		t.Errorf("monitor of the corrupt container exited %d, want 137", code)
	}
	// Everything but the (now empty) cgroup, whose path was in the lost
	// state.
	if _, ok := e.hv.cells()["b"]; ok || e.m.Exists("b") {
		t.Error("cell or state of the corrupt container left")
	}
	if _, ok := e.grants()["b"]; ok {
		t.Error("grant of the corrupt container left")
	}
	if err := e.m.Delete("c", false); !errors.Is(err, ErrNotExist) {
		t.Errorf("delete of a state-less directory = %v, want ErrNotExist", err)
	}
	if e.m.Exists("c") {
		t.Error("state-less directory not removed")
	}
}

func TestConsoleSocket(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(e.dir, "console.sock")
	l, err := netListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		name, master := receivePty(l)
		// The shim keeps the master; closing it would hang the slave up.
		if master >= 0 {
			t.Cleanup(func() { unix.Close(master) })
		}
		got <- name
	}()
	co := e.opts("zic-t", e.bundle("zic-t", bundleOpts{}))
	co.ConsoleSocket = sock
	if err := e.m.Create(context.Background(), co); err != nil {
		t.Fatal(err)
	}
	name := <-got
	t.Cleanup(func() { e.m.Delete("zic-t", true) })
	if !strings.HasPrefix(name, "/dev/pts/") {
		t.Fatalf("received %q, want a pty master named after its slave", name)
	}
	pid := readPid(t, co.PidFile)
	link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/1")
	if err != nil || link != name {
		t.Errorf("monitor stdout = %q, %v; want the pty slave %s", link, err, name)
	}
}
