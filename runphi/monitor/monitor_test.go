package monitor

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// memHV is an in-memory cell for the monitor.
type memHV struct {
	mu        sync.Mutex
	name      string
	id        int
	state     jailhouse.State
	gone      bool
	readErr   error
	shutdowns int
	console   bytes.Buffer // everything ever written
}

func (h *memHV) Cell(ref jailhouse.CellRef) (jailhouse.CellInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.readErr != nil {
		return jailhouse.CellInfo{}, h.readErr
	}
	if h.gone || int(ref.ID) != h.id {
		return jailhouse.CellInfo{}, &jailhouse.Error{Op: jailhouse.OpList, Kind: jailhouse.ErrNoCell, Msg: "no cell"}
	}
	return jailhouse.CellInfo{ID: h.id, Name: h.name, State: h.state}, nil
}

func (h *memHV) ShutdownCell(ref jailhouse.CellRef) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.shutdowns++
	if h.gone || ref.Name != h.name {
		return &jailhouse.Error{Op: jailhouse.OpShutdown, Kind: jailhouse.ErrNoCell, Msg: "no cell"}
	}
	h.state = jailhouse.StateShutDown
	return nil
}

func (h *memHV) set(f func(h *memHV)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

// Console returns a reader that sees everything written so far and
// later, returning io.EOF when caught up.
func (h *memHV) Console(follow bool) (io.ReadCloser, error) {
	return &memConsole{h: h}, nil
}

type memConsole struct {
	h   *memHV
	off int
}

func (c *memConsole) Read(p []byte) (int, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	data := c.h.console.Bytes()
	if c.off >= len(data) {
		return 0, io.EOF
	}
	n := copy(p, data[c.off:])
	c.off += n
	return n, nil
}

func (c *memConsole) Close() error { return nil }

// syncBuffer is a goroutine-safe writer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// harness runs Main in a goroutine as create would see it.
type harness struct {
	t       *testing.T
	hv      *memHV
	dir     string
	fifo    string
	sync    net.Conn // create's end
	sigs    chan os.Signal
	stdout  *syncBuffer
	stderr  *syncBuffer
	done    chan int
	console string
	// releases counts Deps.Release calls; releaseErr is what they
	// return.
	releases   atomic.Int32
	releaseErr error
	log        *syncBuffer
}

func newHarness(t *testing.T, console string) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, fifo: filepath.Join(dir, "exec.fifo"),
		hv:   &memHV{name: "zic-a", id: 3, state: jailhouse.StateShutDown},
		sigs: make(chan os.Signal, 4), stdout: &syncBuffer{}, stderr: &syncBuffer{},
		done: make(chan int, 1), console: console, log: &syncBuffer{}}
	if err := unix.Mkfifo(h.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteConfig(dir, Config{ID: "a", CellName: "zic-a", CellID: 3, Console: console, Fifo: h.fifo}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) run(args ...string) {
	ours, theirs := net.Pipe()
	h.sync = ours
	if args == nil {
		args = []string{h.dir}
	}
	release := func() error {
		h.releases.Add(1)
		return h.releaseErr
	}
	logger := slog.New(slog.NewTextHandler(h.log, nil))
	go func() {
		h.done <- Main(args, Deps{Hypervisor: h.hv, Stdout: h.stdout, Stderr: h.stderr,
			Sync: theirs, Interval: 5 * time.Millisecond, Signals: h.sigs,
			Release: release, TrimInterval: 20 * time.Millisecond, Logger: logger})
	}()
}

// ready reads the handshake line and sends the go byte.
func (h *harness) ready() {
	h.t.Helper()
	line, err := bufio.NewReader(h.sync).ReadString('\n')
	if err != nil || line != MsgReady+"\n" {
		h.t.Fatalf("handshake = %q, %v", line, err)
	}
	if _, err := h.sync.Write([]byte{GoByte}); err != nil {
		h.t.Fatal(err)
	}
}

// start does what runphi start does.
func (h *harness) start() {
	h.t.Helper()
	fd, err := unix.Open(h.fifo, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		h.t.Fatalf("open fifo: %v", err)
	}
	defer unix.Close(fd)
	h.hv.set(func(hv *memHV) { hv.state = jailhouse.StateRunning })
	if _, err := unix.Write(fd, []byte{StartByte}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) wait() int {
	h.t.Helper()
	select {
	case code := <-h.done:
		return code
	case <-time.After(10 * time.Second):
		h.t.Fatal("monitor did not exit")
	}
	return -1
}

func (h *harness) running() bool {
	select {
	case code := <-h.done:
		h.done <- code
		return false
	case <-time.After(30 * time.Millisecond):
		return true
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name    string
		act     func(h *harness)
		want    int
		wantLog string
	}{
		{"SIGTERM shuts the cell down, 143",
			func(h *harness) { h.sigs <- syscall.SIGTERM }, 143, ""},
		{"SIGINT, 130",
			func(h *harness) { h.sigs <- syscall.SIGINT }, 130, ""},
		{"shutdown by someone else, 143 and a log line",
			func(h *harness) { h.hv.set(func(hv *memHV) { hv.state = jailhouse.StateShutDown }) }, 143, "shut down outside runphi"},
		{"cell failed, 1",
			func(h *harness) { h.hv.set(func(hv *memHV) { hv.state = jailhouse.StateFailed }) }, ExitFailed, `failed (state "failed")`},
		{"Comm ABI mismatch counts as failed",
			func(h *harness) { h.hv.set(func(hv *memHV) { hv.state = jailhouse.StateCommABIMismatch }) }, ExitFailed, "failed"},
		{"cell destroyed, 137",
			func(h *harness) { h.hv.set(func(hv *memHV) { hv.gone = true }) }, ExitKilled, "no longer exists"},
		{"cell id taken by another cell, 137",
			func(h *harness) { h.hv.set(func(hv *memHV) { hv.name = "other" }) }, ExitKilled, "no longer exists"},
		{"sysfs unreadable, 255",
			func(h *harness) { h.hv.set(func(hv *memHV) { hv.readErr = errors.New("EIO") }) }, ExitError, "cannot read its state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "uart")
			h.run()
			h.ready()
			h.start()
			if !h.running() {
				t.Fatal("monitor exited while the cell runs")
			}
			tc.act(h)
			if got := h.wait(); got != tc.want {
				t.Errorf("exit status = %d, want %d (stderr %q)", got, tc.want, h.stderr.String())
			}
			if tc.wantLog == "" && h.stderr.String() != "" {
				t.Errorf("stderr = %q, want nothing", h.stderr.String())
			}
			if !strings.Contains(h.stderr.String(), tc.wantLog) {
				t.Errorf("stderr = %q, want it to contain %q", h.stderr.String(), tc.wantLog)
			}
		})
	}
}

func TestSignalBeforeStart(t *testing.T) {
	h := newHarness(t, "uart")
	h.run()
	h.ready()
	if !h.running() {
		t.Fatal("monitor exited before start")
	}
	h.sigs <- syscall.SIGTERM
	if got := h.wait(); got != ExitShutdown {
		t.Errorf("exit status = %d, want %d", got, ExitShutdown)
	}
	if h.hv.shutdowns != 0 {
		t.Errorf("a cell that never started was shut down %d times", h.hv.shutdowns)
	}
}

func TestCellGoneBeforeStart(t *testing.T) {
	h := newHarness(t, "uart")
	h.run()
	h.ready()
	h.hv.set(func(hv *memHV) { hv.gone = true })
	if got := h.wait(); got != ExitKilled {
		t.Errorf("exit status = %d, want %d", got, ExitKilled)
	}
	if !strings.Contains(h.stderr.String(), "destroyed before start") {
		t.Errorf("stderr = %q", h.stderr.String())
	}
}

func TestCreatorDiesBeforeGo(t *testing.T) {
	h := newHarness(t, "uart")
	h.run()
	line, err := bufio.NewReader(h.sync).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("handshake = %q, %v", line, err)
	}
	h.sync.Close()
	if got := h.wait(); got != ExitError {
		t.Errorf("exit status = %d, want %d", got, ExitError)
	}
	if !strings.Contains(h.stderr.String(), "create exited") {
		t.Errorf("stderr = %q", h.stderr.String())
	}
}

func TestSetupErrorsReachCreate(t *testing.T) {
	tests := []struct {
		name string
		prep func(h *harness) []string
		want string
	}{
		{"no arguments", func(h *harness) []string { return []string{} }, "usage"},
		{"missing config", func(h *harness) []string { return []string{t.TempDir()} }, "monitor config"},
		{"missing fifo", func(h *harness) []string { os.Remove(h.fifo); return nil }, "exec fifo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "uart")
			args := tc.prep(h)
			h.run(args...)
			line, _ := bufio.NewReader(h.sync).ReadString('\n')
			if !strings.HasPrefix(line, MsgErrorPrefix) || !strings.Contains(line, tc.want) {
				t.Errorf("handshake = %q, want an error containing %q", line, tc.want)
			}
			if got := h.wait(); got != ExitError {
				t.Errorf("exit status = %d, want %d", got, ExitError)
			}
		})
	}
}

func TestVirtualConsoleForwarded(t *testing.T) {
	for _, tc := range []struct {
		console string
		want    string
	}{
		{"virtual", "hello from the cell\nbye\n"},
		{"uart", ""},
	} {
		t.Run(tc.console, func(t *testing.T) {
			h := newHarness(t, tc.console)
			h.hv.console.WriteString("old output of an earlier cell\n")
			h.run()
			h.ready()
			h.start()
			h.hv.set(func(hv *memHV) { hv.console.WriteString("hello from the cell\n") })
			deadline := time.Now().Add(5 * time.Second)
			for tc.want != "" && !strings.Contains(h.stdout.String(), "hello") && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			// Output written just before the cell stops is not lost.
			h.hv.set(func(hv *memHV) { hv.console.WriteString("bye\n"); hv.state = jailhouse.StateShutDown })
			h.wait()
			if got := h.stdout.String(); got != tc.want {
				t.Errorf("stdout = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := Config{ID: "x", CellName: "x", CellID: 7, Console: "virtual", Fifo: "/run/runphi/x/exec.fifo"}
	if err := WriteConfig(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := readConfig(dir)
	if err != nil || got != want {
		t.Errorf("readConfig = %+v, %v; want %+v", got, err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"id":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readConfig(dir); err == nil {
		t.Error("incomplete config accepted")
	}
}

// eventually polls cond for up to 5 seconds.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestReleaseWhileWaiting: the monitor gives memory back once it is
// confirmed, then every TrimInterval, before and after start.
func TestReleaseWhileWaiting(t *testing.T) {
	h := newHarness(t, "uart")
	h.run()
	line, err := bufio.NewReader(h.sync).ReadString('\n')
	if err != nil || line != MsgReady+"\n" {
		t.Fatalf("handshake = %q, %v", line, err)
	}
	// Setup is not over before create's go-ahead.
	time.Sleep(30 * time.Millisecond)
	if n := h.releases.Load(); n != 0 {
		t.Fatalf("%d releases before the go-ahead", n)
	}
	if _, err := h.sync.Write([]byte{GoByte}); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return h.releases.Load() >= 2 }) {
		t.Fatalf("%d releases while waiting for start, want at least 2", h.releases.Load())
	}
	h.start()
	n := h.releases.Load()
	if !eventually(func() bool { return h.releases.Load() >= n+2 }) {
		t.Fatalf("%d releases after start, want at least %d", h.releases.Load(), n+2)
	}
	h.sigs <- syscall.SIGTERM
	if got := h.wait(); got != ExitShutdown {
		t.Errorf("exit status = %d, want %d", got, ExitShutdown)
	}
}

// TestReleaseFailureIsHarmless: a failed release is logged once, not
// shown in the container's log, and changes nothing else.
func TestReleaseFailureIsHarmless(t *testing.T) {
	h := newHarness(t, "uart")
	h.releaseErr = errors.New("no /proc")
	h.run()
	h.ready()
	h.start()
	if !eventually(func() bool { return h.releases.Load() >= 3 }) {
		t.Fatalf("%d releases, want at least 3", h.releases.Load())
	}
	h.hv.set(func(hv *memHV) { hv.state = jailhouse.StateShutDown })
	if got := h.wait(); got != ExitShutdown {
		t.Errorf("exit status = %d, want %d", got, ExitShutdown)
	}
	if n := strings.Count(h.log.String(), "memory not released"); n != 1 {
		t.Errorf("log has %d release warnings, want 1:\n%s", n, h.log.String())
	}
	if strings.Contains(h.stderr.String(), "memory") {
		t.Errorf("container stderr mentions the release: %q", h.stderr.String())
	}
}

func TestNoReleaseWhenSetupFails(t *testing.T) {
	h := newHarness(t, "uart")
	os.Remove(h.fifo)
	h.run()
	line, _ := bufio.NewReader(h.sync).ReadString('\n')
	if !strings.HasPrefix(line, MsgErrorPrefix) {
		t.Fatalf("handshake = %q, want an error", line)
	}
	if got := h.wait(); got != ExitError {
		t.Errorf("exit status = %d, want %d", got, ExitError)
	}
	if n := h.releases.Load(); n != 0 {
		t.Errorf("%d releases after a failed setup", n)
	}
}
