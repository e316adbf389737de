package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/runphi/monitor"
)

// monProc is a monitor process started the way create starts one, over a
// fake sysfs holding its cell (id 3, "zic-a") and no Jailhouse device.
type monProc struct {
	t     *testing.T
	dir   string
	cell  string // sysfs cells/3
	fifo  string
	cmd   *exec.Cmd
	sync  *os.File
	errf  *os.File
	done  chan struct{}
	state *os.ProcessState
}

// startMonitor runs argv0 (runphi, or this test binary acting as it with
// extraEnv) as "__monitor", completes the handshake and returns the
// monitor waiting for start.
func startMonitor(t *testing.T, argv0 string, extraEnv ...string) *monProc {
	t.Helper()
	dir := t.TempDir()
	p := &monProc{t: t, dir: dir, cell: filepath.Join(dir, "sysfs", "cells", "3"), done: make(chan struct{})}
	must(t, os.MkdirAll(p.cell, 0o755))
	for name, v := range map[string]string{"name": "zic-a", "state": "running", "cpus_assigned_list": "1", "cpus_failed_list": ""} {
		must(t, os.WriteFile(filepath.Join(p.cell, name), []byte(v+"\n"), 0o644))
	}
	stateDir := filepath.Join(dir, "state")
	must(t, os.MkdirAll(stateDir, 0o700))
	p.fifo = filepath.Join(stateDir, "exec.fifo")
	must(t, unix.Mkfifo(p.fifo, 0o600))
	must(t, monitor.WriteConfig(stateDir, monitor.Config{ID: "a", CellName: "zic-a", CellID: 3, Console: "uart", Fifo: p.fifo}))
	cfg := filepath.Join(dir, "config.json")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`{"state_root": %q, "jailhouse_sysfs": %q, "jailhouse_device": %q}`,
		filepath.Join(dir, "root"), filepath.Join(dir, "sysfs"), filepath.Join(dir, "no-jailhouse"))), 0o644))

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	p.sync = os.NewFile(uintptr(fds[0]), "sync")
	child := os.NewFile(uintptr(fds[1]), "sync")
	t.Cleanup(func() { p.sync.Close() })
	p.errf = tempFile(t)
	p.cmd = exec.Command(argv0, monitor.Verb, stateDir)
	p.cmd.Env = append(append(os.Environ(), "RUNPHI_CONFIG="+cfg), extraEnv...)
	p.cmd.Stderr = p.errf
	p.cmd.ExtraFiles = []*os.File{child}
	err = p.cmd.Start()
	child.Close()
	must(t, err)
	go func() {
		defer close(p.done)
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	line, err := bufio.NewReader(p.sync).ReadString('\n')
	if err != nil || line != monitor.MsgReady+"\n" {
		t.Fatalf("handshake = %q, %v; stderr %q", line, err, readBack(t, p.errf))
	}
	_, err = p.sync.Write([]byte{monitor.GoByte})
	must(t, err)
	return p
}

// start does what runphi start does once the cell runs.
func (p *monProc) start() {
	p.t.Helper()
	fd, err := unix.Open(p.fifo, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	must(p.t, err)
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte{monitor.StartByte})
	must(p.t, err)
}

func (p *monProc) setState(s string) {
	must(p.t, os.WriteFile(filepath.Join(p.cell, "state"), []byte(s+"\n"), 0o644))
}

// wait returns the exit status as the shim reports it.
func (p *monProc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatal("monitor did not exit")
	}
	ws := p.state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// memory returns the VmRSS, RssAnon and RssFile lines of the monitor's
// /proc status.
func (p *monProc) memory() (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return "", err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if slices.Contains([]string{"VmRSS", "RssAnon", "RssFile"}, k) {
			out = append(out, k+" "+strings.TrimSpace(v))
		}
	}
	if len(out) != 3 {
		return "", errors.New("no memory figures in /proc status")
	}
	return strings.Join(out, ", "), nil
}

// TestMonitorProcess runs the real monitor process (this binary as
// runphi): after it has given its memory back and waited a while, it
// still ends with the container's status.
func TestMonitorProcess(t *testing.T) {
	self, err := os.Executable()
	must(t, err)
	tests := []struct {
		name    string
		act     func(p *monProc)
		want    int
		wantLog string
	}{
		{"shut down outside runphi", func(p *monProc) { p.setState("shut down") }, 143, "shut down outside runphi"},
		{"SIGINT, then the cell is down", func(p *monProc) {
			must(t, p.cmd.Process.Signal(syscall.SIGINT))
			// No Jailhouse device here: the shutdown fails and the
			// monitor keeps watching until the cell is down.
			time.Sleep(300 * time.Millisecond)
			p.setState("shut down")
		}, 130, "shutdown on signal 2 failed"},
		{"cell failed", func(p *monProc) { p.setState("failed") }, 1, `failed (state "failed")`},
		{"cell destroyed", func(p *monProc) { must(t, os.RemoveAll(p.cell)) }, 137, "no longer exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startMonitor(t, self, asRunphi+"=1")
			// Several polls on released memory before and after start.
			time.Sleep(300 * time.Millisecond)
			p.start()
			time.Sleep(300 * time.Millisecond)
			tc.act(p)
			stderr := func() string { return readBack(t, p.errf) }
			if got := p.wait(); got != tc.want {
				t.Fatalf("exit status %d, want %d; stderr %q", got, tc.want, stderr())
			}
			if !strings.Contains(stderr(), tc.wantLog) {
				t.Errorf("stderr %q lacks %q", stderr(), tc.wantLog)
			}
		})
	}
}

// TestMonitorRSS prints the resident set of a real monitor built like a
// release binary (static, stripped), in the state of a running ZIC. It
// measures, it asserts nothing about the figures; run it by hand:
//
//	RUNPHI_MEASURE=1 go test -run TestMonitorRSS -v ./runphi
//
// RUNPHI_MEASURE_AT lists the times after start to sample (default "5s";
// e.g. "5s,1m,3m").
func TestMonitorRSS(t *testing.T) {
	if os.Getenv("RUNPHI_MEASURE") != "1" {
		t.Skip("a measurement: set RUNPHI_MEASURE=1")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build runphi")
	}
	var at []time.Duration
	for _, s := range strings.Split(cmp.Or(os.Getenv("RUNPHI_MEASURE_AT"), "5s"), ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("RUNPHI_MEASURE_AT: %v", err)
		}
		at = append(at, d)
	}
	bin := filepath.Join(t.TempDir(), "runphi")
	build := exec.Command(goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fi, err := os.Stat(bin)
	must(t, err)
	p := startMonitor(t, bin)
	p.start()
	begin := time.Now()
	t.Logf("monitor of a running ZIC, static stripped %s/%s binary of %d KiB", runtime.GOOS, runtime.GOARCH, fi.Size()>>10)
	for _, d := range at {
		time.Sleep(time.Until(begin.Add(d)))
		fig, err := p.memory()
		must(t, err)
		t.Logf("after %v: %s", d, fig)
	}
	p.setState("shut down")
	if got := p.wait(); got != monitor.ExitShutdown {
		t.Errorf("exit status %d, want %d", got, monitor.ExitShutdown)
	}
}
