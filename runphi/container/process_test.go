package container

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// runCreate runs create in a separate process (the test binary in the
// create role), as the shim runs runphi create, and returns its wait
// status.
func (e *env) runCreate(t *testing.T, id, fault string) (syscall.WaitStatus, CreateOpts, string) {
	t.Helper()
	bundle := e.bundle(id, bundleOpts{})
	job := createJob{Env: e.cfg, ID: id, Fault: fault,
		Opts: CreateOpts{ID: id, Bundle: bundle, PidFile: filepath.Join(bundle, "init.pid")}}
	data, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"=create", createEnv+"="+string(data))
	out, err := os.Create(filepath.Join(e.dir, id+".create.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(out.Name())
	return cmd.ProcessState.Sys().(syscall.WaitStatus), job.Opts, string(text)
}

// TestFaultInjection kills create at every step and checks that the state
// it leaves reads as stopped and that delete --force removes everything.
func TestFaultInjection(t *testing.T) {
	for _, step := range FaultSteps {
		t.Run(step, func(t *testing.T) {
			e := newEnv(t)
			id := "fault-" + step
			ws, _, out := e.runCreate(t, id, "create:"+step)
			if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("create was not killed at %s: %v, output %q", step, ws, out)
			}
			if !e.m.Exists(id) {
				t.Fatal("a killed create left no state: delete could not find it")
			}
			s, err := e.m.State(id)
			if err != nil || s.Status != specs.StateStopped || s.Pid != 0 {
				t.Errorf("state after the crash = %+v, %v; want stopped, pid 0", s, err)
			}
			if err := e.m.Start(id); !errors.Is(err, ErrNotCreated) {
				t.Errorf("start after the crash = %v, want ErrNotCreated", err)
			}
			if err := e.m.Delete(id, true); err != nil {
				t.Fatal(err)
			}
			e.assertNothingLeft(id)
		})
	}
}

// TestShimLifecycle drives the ZIC as containerd's shim does: this process
// is a child subreaper, create runs as a separate process and exits, the
// monitor named by the pid file is re-parented here, and its exit status
// is collected with wait4.
func TestShimLifecycle(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skip("cannot become a subreaper:", err)
	}
	for _, tc := range []struct {
		sig  unix.Signal
		want int
	}{{unix.SIGTERM, 143}, {unix.SIGKILL, 137}} {
		t.Run(unix.SignalName(tc.sig), func(t *testing.T) {
			e := newEnv(t)
			id := "shim-" + strings.ToLower(unix.SignalName(tc.sig))
			ws, co, out := e.runCreate(t, id, "")
			if ws.ExitStatus() != 0 {
				t.Fatalf("create: %v, %q", ws, out)
			}
			pid := readPid(t, co.PidFile)
			stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if err != nil {
				t.Fatal(err)
			}
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if fields[1] != strconv.Itoa(os.Getpid()) {
				t.Errorf("monitor parent = %s, want the subreaper %d", fields[1], os.Getpid())
			}
			if err := e.m.Start(id); err != nil {
				t.Fatal(err)
			}
			if err := e.m.Kill(id, tc.sig, false); err != nil {
				t.Fatal(err)
			}
			var status unix.WaitStatus
			for {
				_, err = unix.Wait4(pid, &status, 0, nil)
				if !errors.Is(err, unix.EINTR) {
					break
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			code := status.ExitStatus()
			if status.Signaled() {
				code = 128 + int(status.Signal())
			}
			if code != tc.want {
				t.Errorf("container exit status = %d, want %d", code, tc.want)
			}
			if got := e.status(id); got != specs.StateStopped {
				t.Errorf("status = %s", got)
			}
			if err := e.m.Delete(id, false); err != nil {
				t.Fatal(err)
			}
			e.assertNothingLeft(id)
		})
	}
}
