package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Console writes whole lines to the guest console from any goroutine, so
// that output of concurrent processes never splits a marker line.
type Console struct {
	mu sync.Mutex
	w  io.Writer
}

// NewConsole returns a Console writing to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// Println writes one line.
func (c *Console) Println(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintln(c.w, line)
}

// LineWriter returns an io.Writer that prints every complete line written
// to it with prefix; Flush prints a trailing partial line.
func (c *Console) LineWriter(prefix string) *LineWriter {
	return &LineWriter{c: c, prefix: prefix}
}

// LineWriter is the writer of Console.LineWriter. It is safe for concurrent
// use and also keeps the last lines for error messages.
type LineWriter struct {
	c      *Console
	prefix string
	mu     sync.Mutex
	buf    []byte
	tail   []string
}

const tailLines = 20

func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(string(bytes.TrimRight(w.buf[:i], "\r")))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *LineWriter) emit(line string) {
	w.c.Println(w.prefix + line)
	w.tail = append(w.tail, line)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
}

// Flush prints an unterminated last line.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

// Tail returns up to the last 20 lines written.
func (w *LineWriter) Tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.tail)
}

// Env is what a scenario gets: the run's configuration, console helpers,
// and process helpers that capture output and clean up after the scenario.
type Env struct {
	Config *Config
	Boot   *BootReport // nil when init could not write one

	ctx      context.Context
	console  *Console
	name     string
	dir      string
	cleanups []func()
	// Daemons whose lifetime spans scenarios (jhemu) live on the runner.
	shared *shared
}

// shared holds state that lives across scenarios of one run.
type shared struct {
	mu    sync.Mutex
	jhemu *Daemon
}

// Mode is the Jailhouse mode of this run.
func (e *Env) Mode() Mode { return e.Config.Mode }

// Name is the scenario's name.
func (e *Env) Name() string { return e.name }

// Context ends when the scenario times out.
func (e *Env) Context() context.Context { return e.ctx }

// Logf prints a line on the console.
func (e *Env) Logf(format string, args ...any) {
	e.console.Println(fmt.Sprintf(format, args...))
}

// Step prints a narration line, "==> what happens next", before the
// commands of a step, so that the console reads as a walkthrough.
func (e *Env) Step(format string, args ...any) {
	e.console.Println("==> " + fmt.Sprintf(format, args...))
}

// Dir is the scenario's scratch directory (created on first use).
func (e *Env) Dir() string { return e.dir }

// Cleanup registers fn to run after the scenario, last registered first.
func (e *Env) Cleanup(fn func()) { e.cleanups = append(e.cleanups, fn) }

func (e *Env) runCleanups() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

// Bin returns the guest path of one of our binaries or of a userland
// program (containerd, runc, ...) found in PATH, or a skip error naming why
// it is absent.
func (e *Env) Bin(name string) (string, error) {
	if p, ok := e.Config.Binaries[name]; ok {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("binary %s: %w", name, err)
		}
		return p, nil
	}
	if why, ok := e.Config.Missing[name]; ok {
		return "", Skipf("needs %s: %s", name, why)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", Skipf("needs %s: not in this initramfs", name)
}

// Command returns a command for name (resolved with Bin unless it is a
// path) bound to the scenario's context. Output is not captured; use Run or
// Output.
func (e *Env) Command(name string, args ...string) (*exec.Cmd, error) {
	path := name
	if !strings.Contains(name, "/") {
		p, err := e.Bin(name)
		if err != nil {
			return nil, err
		}
		path = p
	}
	cmd := exec.CommandContext(e.ctx, path, args...)
	cmd.Dir = e.dir
	cmd.WaitDelay = 5 * time.Second
	return cmd, nil
}

// Run runs name with args, echoes the command and its combined output on
// the console, and returns the output. A non-zero exit is an error that
// quotes the last lines of output.
func (e *Env) Run(name string, args ...string) (string, error) {
	cmd, err := e.Command(name, args...)
	if err != nil {
		return "", err
	}
	return e.Output(cmd)
}

// Output runs cmd like Run does.
func (e *Env) Output(cmd *exec.Cmd) (string, error) {
	e.Logf("$ %s", strings.Join(append([]string{filepath.Base(cmd.Path)}, cmd.Args[1:]...), " "))
	var all bytes.Buffer
	lw := e.console.LineWriter("  | ")
	w := io.MultiWriter(&all, lw)
	cmd.Stdout, cmd.Stderr = w, w
	start := time.Now()
	err := cmd.Run()
	lw.Flush()
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		tail := lw.Tail()
		if len(tail) > 3 {
			tail = tail[len(tail)-3:]
		}
		return all.String(), fmt.Errorf("%s (after %v): %w: %s", filepath.Base(cmd.Path), took, err, strings.Join(tail, " / "))
	}
	e.Logf("  (%s took %v)", filepath.Base(cmd.Path), took)
	return all.String(), nil
}

// Quiet runs name with args without echoing anything, for polling; the
// error quotes the output.
func (e *Env) Quiet(name string, args ...string) (string, error) {
	cmd, err := e.Command(name, args...)
	if err != nil {
		return "", err
	}
	return quietOutput(cmd)
}

func quietOutput(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(append([]string{filepath.Base(cmd.Path)}, cmd.Args[1:]...), " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Daemon is a background process started by Start.
type Daemon struct {
	Name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// Start runs name in the background with its output in a log file of the
// scenario directory. The daemon is stopped (SIGTERM, then SIGKILL after 5s)
// when the scenario ends.
func (e *Env) Start(name string, args ...string) (*Daemon, error) {
	d, err := e.startDaemon(context.WithoutCancel(e.ctx), e.dir, name, args...)
	if err != nil {
		return nil, err
	}
	e.Cleanup(func() { d.Stop(e) })
	return d, nil
}

func (e *Env) startDaemon(ctx context.Context, dir, name string, args ...string) (*Daemon, error) {
	path := name
	if !strings.Contains(name, "/") {
		p, err := e.Bin(name)
		if err != nil {
			return nil, err
		}
		path = p
	}
	logf, err := os.Create(filepath.Join(dir, filepath.Base(path)+".log"))
	if err != nil {
		return nil, fmt.Errorf("daemon %s: %w", name, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	e.Logf("$ %s %s &  (log: %s)", filepath.Base(path), strings.Join(args, " "), logf.Name())
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("daemon %s: %w", name, err)
	}
	d := &Daemon{Name: filepath.Base(path), cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	return d, nil
}

// Exited reports whether the daemon has exited, and its exit error.
func (d *Daemon) Exited() (bool, error) {
	select {
	case <-d.done:
		return true, d.err
	default:
		return false, nil
	}
}

// Pid is the daemon's process ID.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) []string {
	data, err := os.ReadFile(d.log.Name())
	if err != nil {
		return []string{"(log unreadable: " + err.Error() + ")"}
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// DumpLog prints the last n lines of the daemon's log on the console.
func (d *Daemon) DumpLog(e *Env, n int) {
	e.Logf("--- last lines of %s ---", d.log.Name())
	for _, l := range d.LogTail(n) {
		e.Logf("  %s| %s", d.Name, l)
	}
}

// Stop terminates the daemon: SIGTERM, then SIGKILL after 5 seconds.
func (d *Daemon) Stop(e *Env) {
	if exited, _ := d.Exited(); exited {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		e.Logf("%s ignored SIGTERM for 5s; killing it", d.Name)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// WaitFor polls cond every 20ms until it holds, the timeout passes or the
// scenario's context ends.
func (e *Env) WaitFor(what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %v", what, timeout)
		}
		select {
		case <-e.ctx.Done():
			return fmt.Errorf("%s: %w", what, e.ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Jailhouse describes where the Jailhouse interfaces are in this run.
type Jailhouse struct {
	Device string // the character device
	Sysfs  string // the sysfs tree
}

// EmulatedCPUs are the online CPUs of the machine jhemu emulates: those of
// the qemu-arm64 root cell (boards/qemu-arm64/system*.json), as in the real
// tier's 16-CPU guest, whatever the emulated tier's own -smp is. Enabling
// a root cell that names other CPUs fails as it would on that machine.
const EmulatedCPUs = "0-15"

// Jailhouse returns the Jailhouse interfaces of this run. In Emulated mode
// it starts jhemu once per run (it stays up across scenarios) and waits for
// its CUSE device; in Real mode it checks that the driver is loaded.
func (e *Env) Jailhouse() (Jailhouse, error) {
	if e.Config.Mode == Real {
		if _, err := os.Stat(DeviceNode); err != nil {
			return Jailhouse{}, fmt.Errorf("jailhouse driver not loaded: %w", err)
		}
		return Jailhouse{Device: DeviceNode, Sysfs: RealSysfs}, nil
	}
	e.shared.mu.Lock()
	defer e.shared.mu.Unlock()
	jh := Jailhouse{Device: DeviceNode, Sysfs: JhemuSysfs}
	if d := e.shared.jhemu; d != nil {
		if exited, err := d.Exited(); exited {
			return Jailhouse{}, fmt.Errorf("jhemu exited earlier: %v", err)
		}
		return jh, nil
	}
	if err := os.MkdirAll(filepath.Dir(JhemuSysfs), 0o755); err != nil {
		return Jailhouse{}, fmt.Errorf("jhemu: %w", err)
	}
	// jhemu outlives this scenario: its context is the run's, not ours.
	d, err := e.startDaemon(context.WithoutCancel(e.ctx), filepath.Dir(JhemuSysfs), "jhemu", "--sysfs", JhemuSysfs, "--cpus", EmulatedCPUs)
	if err != nil {
		return Jailhouse{}, err
	}
	err = e.WaitFor("jhemu serving "+DeviceNode, 20*time.Second, func() bool {
		if exited, _ := d.Exited(); exited {
			return true
		}
		_, err := os.Stat(DeviceNode)
		return err == nil
	})
	if exited, werr := d.Exited(); exited {
		d.DumpLog(e, 20)
		return Jailhouse{}, fmt.Errorf("jhemu exited at start: %v", werr)
	}
	if err != nil {
		d.DumpLog(e, 20)
		d.Stop(e)
		return Jailhouse{}, err
	}
	e.shared.jhemu = d
	return jh, nil
}
