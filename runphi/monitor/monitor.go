// Package monitor is the process that stands in for a ZIC's workload: the
// hidden runphi verb "__monitor" (Verb). Its pid is the one create writes
// to --pid-file, so the shim (or conmon) reaps it and reports its exit
// status as the container's.
//
// Invocation, by create only:
//
//	runphi [global flags] __monitor <state dir>
//
// with the container's stdio as fds 0-2 and one end of a socketpair as fd
// 3. It reads <state dir>/monitor.json (Config), opens exec.fifo, skips
// the console backlog, writes "ready\n" on fd 3 and waits for one byte
// back: create sends it after recording the monitor's pid, and if create
// dies first the monitor sees EOF and exits (255), so no monitor outlives
// a create that did not record it. Then it waits for start, which writes a
// byte into exec.fifo after starting the cell, and watches the cell.
//
// Before start it only checks that the cell still exists. After start it
// watches the cell's sysfs state (cells/<id>/, name checked against
// pid reuse of cell ids) every Interval and exits with the container's
// status:
//
//	143 (128+15)  the cell was shut down: after SIGTERM (runphi kill TERM,
//	              or a signal sent to the monitor directly, which it turns
//	              into a cell shutdown), or by someone else (logged)
//	128+n         shut down after stop signal n (INT 130, HUP 129, QUIT 131),
//	              also when the signal arrives before start
//	137 (128+9)   SIGKILL (runphi kill KILL kills the monitor, then
//	              destroys the cell), or the cell was destroyed under it
//	              (logged)
//	1             the cell failed (state "failed", "Comm ABI mismatch",
//	              "invalid"); logged
//	255           the monitor could not do its job: bad invocation or
//	              config, create died before finishing, sysfs unreadable
//
// Log lines go to the container's stderr (so `kubectl logs` shows why a
// ZIC ended) and to Deps.Logger if set.
//
// # Console
//
// For a ZIC whose descriptor says console "virtual", the monitor copies
// the hypervisor console (read() on /dev/jailhouse) to its stdout, the
// container log, from the moment the monitor started (older output is
// skipped). That console is one 2 KiB ring shared by the hypervisor and
// every cell with an active virtual console, without any tag saying who
// wrote a byte: a container's log therefore also shows hypervisor messages
// and the output of other such cells running at the same time, and output
// the ring overwrote between two reads (every Interval) is lost (the
// driver reports it as "<missed N bytes of console log>"). With console
// "uart" (the default) the cell writes to the board's UART, which the
// monitor does not read: those containers' logs stay empty, the output is
// on the serial line. Console "none" has no output at all. Nothing is
// ever sent to a cell: its stdin is not read.
//
// # Memory
//
// A host runs one monitor per ZIC for as long as the ZIC runs, so the
// monitor keeps its resident set small: once setup is done, and then every
// TrimInterval while it waits, it returns free heap pages to the kernel
// and drops its mappings of the runphi binary's code and constant data,
// nearly all of which only setup used (releaseMemory). The pages the wait
// loops use fault back in from the page cache.
package monitor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// Verb is the hidden runphi verb that runs the monitor.
const Verb = "__monitor"

// ConfigFile is the monitor's configuration in the state directory.
const ConfigFile = "monitor.json"

// DefaultInterval is how often the cell state is read.
const DefaultInterval = 200 * time.Millisecond

// SyncFD is the descriptor of the create handshake socket.
const SyncFD = 3

// Exit statuses (see the package comment).
const (
	ExitFailed   = 1
	ExitShutdown = 128 + int(syscall.SIGTERM)
	ExitKilled   = 128 + int(syscall.SIGKILL)
	ExitError    = 255
)

// Handshake messages on the sync socket.
const (
	MsgReady = "ready"
	// MsgErrorPrefix starts the line a monitor writes instead of
	// MsgReady when its setup fails.
	MsgErrorPrefix = "error: "
	// GoByte is what create sends once the monitor is recorded.
	GoByte = 'g'
	// StartByte is what start writes into exec.fifo.
	StartByte = '0'
)

// maxReadErrors is how many polls in a row may fail to read the cell
// before the monitor gives up.
const maxReadErrors = 10

// Config is what create tells the monitor.
type Config struct {
	ID       string `json:"id"`
	CellName string `json:"cell_name"`
	CellID   int    `json:"cell_id"`
	// Console is the descriptor's console: "virtual" makes the monitor
	// forward the hypervisor console.
	Console string `json:"console"`
	// Fifo is the exec.fifo path.
	Fifo string `json:"fifo"`
}

// WriteConfig writes dir/monitor.json.
// signalGrace is how long a monitor that sees its cell shut down waits
// for the stop signal runphi kill sends before shutting it down.
const signalGrace = 500 * time.Millisecond

func WriteConfig(dir string, c Config) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("monitor config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), data, 0o600); err != nil {
		return fmt.Errorf("monitor config: %w", err)
	}
	return nil
}

func readConfig(dir string) (Config, error) {
	var c Config
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return c, fmt.Errorf("monitor config: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("monitor config %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if c.CellName == "" || c.CellID <= 0 || c.Fifo == "" {
		return c, fmt.Errorf("monitor config %s: cell %q id %d fifo %q: incomplete", filepath.Join(dir, ConfigFile), c.CellName, c.CellID, c.Fifo)
	}
	return c, nil
}

// Hypervisor is what the monitor needs of Jailhouse; *jailhouse.Client
// satisfies it.
type Hypervisor interface {
	Cell(ref jailhouse.CellRef) (jailhouse.CellInfo, error)
	ShutdownCell(ref jailhouse.CellRef) error
	Console(follow bool) (io.ReadCloser, error)
}

// Deps are the monitor's dependencies; zero fields get defaults.
type Deps struct {
	// Hypervisor defaults to jailhouse.New with the default paths; the
	// main package passes the client it builds from its configuration.
	Hypervisor Hypervisor
	// Logger receives the monitor's log lines besides stderr.
	Logger         *slog.Logger
	Stdout, Stderr io.Writer
	// Sync is the handshake socket, default fd SyncFD.
	Sync io.ReadWriteCloser
	// Interval defaults to DefaultInterval.
	Interval time.Duration
	// Signals, if set, replaces signal.Notify (tests deliver signals
	// through it).
	Signals <-chan os.Signal
	// Release gives memory back; the monitor calls it once setup is
	// done and then every TrimInterval while it waits. It defaults to
	// releaseMemory, which changes the whole process: tests replace it.
	Release func() error
	// TrimInterval defaults to DefaultTrimInterval.
	TrimInterval time.Duration
}

type monitor struct {
	cfg     Config
	hv      Hypervisor
	log     *slog.Logger
	stdout  io.Writer
	stderr  io.Writer
	sync    io.ReadWriteCloser
	tick    time.Duration
	sigs    <-chan os.Signal
	console io.ReadCloser

	release   func() error
	trimEvery time.Duration
	lastTrim  time.Time
	trimErr   bool // a failed release was logged
}

// Main runs the monitor with args, the arguments after the verb (the state
// directory), and returns the exit status.
func Main(args []string, d Deps) int {
	m := &monitor{hv: d.Hypervisor, log: d.Logger, stdout: d.Stdout, stderr: d.Stderr,
		sync: d.Sync, tick: d.Interval, sigs: d.Signals, release: d.Release, trimEvery: d.TrimInterval}
	if m.stdout == nil {
		m.stdout = os.Stdout
	}
	if m.stderr == nil {
		m.stderr = os.Stderr
	}
	if m.sync == nil {
		m.sync = os.NewFile(SyncFD, "sync")
	}
	defer m.sync.Close()
	if m.tick <= 0 {
		m.tick = DefaultInterval
	}
	if m.sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, stopSignals...)
		// A closed stdout (the shim gone) must not kill the monitor.
		signal.Ignore(syscall.SIGPIPE)
		m.sigs = ch
	}
	if m.hv == nil {
		m.hv = jailhouse.New(jailhouse.Paths{})
	}
	if m.release == nil {
		m.release = releaseMemory
	}
	if m.trimEvery <= 0 {
		m.trimEvery = DefaultTrimInterval
	}

	fifo, err := m.setup(args)
	if err != nil {
		fmt.Fprintf(m.sync, "%s%s\n", MsgErrorPrefix, oneLine(err.Error()))
		m.report("monitor setup failed", err)
		return ExitError
	}
	defer fifo.Close()
	if m.console != nil {
		defer m.console.Close()
	}
	if err := m.handshake(); err != nil {
		m.report("monitor not confirmed", err)
		return ExitError
	}
	// From here on the monitor only waits, maybe for months.
	m.trim()

	started := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := io.ReadFull(fifo, b[:])
		started <- err
	}()
	if code, done := m.awaitStart(started); done {
		return code
	}
	return m.watch()
}

// awaitStart waits for start's byte in exec.fifo. Meanwhile a stop signal
// ends the container, and so does its cell vanishing (a delete that could
// not read the state, jailhouse disable): nothing would ever start it.
func (m *monitor) awaitStart(started <-chan error) (code int, done bool) {
	ticker := time.NewTicker(m.tick)
	defer ticker.Stop()
	for {
		select {
		case sig := <-m.sigs:
			return 128 + signum(sig), true
		case err := <-started:
			if err != nil {
				m.report("waiting for start", err)
				return ExitError, true
			}
			return 0, false
		case <-ticker.C:
			m.maybeTrim()
			if m.vanished() {
				m.report(fmt.Sprintf("cell %s no longer exists (destroyed before start)", m.cfg.CellName), nil)
				return ExitKilled, true
			}
		}
	}
}

// vanished reports whether the cell is known to be gone (a read error is
// not proof).
func (m *monitor) vanished() bool {
	ref, err := jailhouse.ByID(m.cfg.CellID)
	if err != nil {
		return true
	}
	info, err := m.hv.Cell(ref)
	return errors.Is(err, jailhouse.ErrNoCell) || err == nil && info.Name != m.cfg.CellName
}

// stopSignals are the signals that ask the container to stop.
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

func signum(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return int(syscall.SIGTERM)
}

func oneLine(s string) string {
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

func (m *monitor) setup(args []string) (*os.File, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("usage: runphi %s STATE-DIR (got %d arguments)", Verb, len(args))
	}
	cfg, err := readConfig(args[0])
	if err != nil {
		return nil, err
	}
	m.cfg = cfg
	// Read and write: the monitor is then a writer itself, so its reads
	// never see end-of-file, and start's non-blocking open for writing
	// succeeds exactly while the monitor holds the fifo.
	fifo, err := os.OpenFile(cfg.Fifo, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	if cfg.Console == "virtual" {
		r, err := m.hv.Console(false)
		if err != nil {
			// The cell runs without a captured console rather than not
			// at all; say so in its log.
			m.report("console not forwarded", err)
		} else {
			_, _ = io.Copy(io.Discard, r)
			m.console = r
		}
	}
	return fifo, nil
}

func (m *monitor) handshake() error {
	if _, err := io.WriteString(m.sync, MsgReady+"\n"); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	var b [1]byte
	n, err := m.sync.Read(b[:])
	switch {
	case n == 1 && b[0] == GoByte:
		return m.sync.Close()
	case n == 1:
		return fmt.Errorf("sync: unexpected byte %q", b[0])
	case err == nil || errors.Is(err, io.EOF):
		return errors.New("create exited before the container was created")
	}
	return fmt.Errorf("sync: %w", err)
}

func (m *monitor) watch() int {
	ticker := time.NewTicker(m.tick)
	defer ticker.Stop()
	ref, err := jailhouse.ByID(m.cfg.CellID)
	if err != nil {
		m.report("cell id", err)
		return ExitError
	}
	byName, err := jailhouse.ByName(m.cfg.CellName)
	if err != nil {
		m.report("cell name", err)
		return ExitError
	}
	stop := 0
	errs := 0
	for {
		m.pump()
		code, done := m.check(ref, stop, &errs)
		if done {
			m.pump()
			return code
		}
		select {
		case sig := <-m.sigs:
			stop = signum(sig)
			if err := m.hv.ShutdownCell(byName); err != nil && !errors.Is(err, jailhouse.ErrNoCell) {
				m.report(fmt.Sprintf("cell %s: shutdown on signal %d failed", m.cfg.CellName, stop), err)
			}
		case <-ticker.C:
			m.maybeTrim()
		}
	}
}

// check reads the cell once; done reports that the container has ended
// with status code.
func (m *monitor) check(ref jailhouse.CellRef, stop int, errs *int) (code int, done bool) {
	info, err := m.hv.Cell(ref)
	if err == nil && info.Name != m.cfg.CellName {
		err = jailhouse.ErrNoCell // the id now belongs to another cell
	}
	if err != nil {
		if errors.Is(err, jailhouse.ErrNoCell) {
			if stop != 0 {
				return 128 + stop, true
			}
			m.report(fmt.Sprintf("cell %s no longer exists (destroyed outside runphi)", m.cfg.CellName), nil)
			return ExitKilled, true
		}
		if *errs++; *errs >= maxReadErrors {
			m.report(fmt.Sprintf("cell %s: cannot read its state", m.cfg.CellName), err)
			return ExitError, true
		}
		return 0, false
	}
	*errs = 0
	switch info.State {
	case jailhouse.StateRunning, jailhouse.StateRunningLocked:
		return 0, false
	case jailhouse.StateShutDown:
		if stop == 0 {
			// runphi kill signals the monitor before it shuts the cell down,
			// but kill(2) returns before this process has taken the signal;
			// give a signal on its way a moment before blaming someone else.
			select {
			case sig := <-m.sigs:
				stop = signum(sig)
			case <-time.After(signalGrace):
			}
		}
		if stop != 0 {
			return 128 + stop, true
		}
		m.report(fmt.Sprintf("cell %s was shut down outside runphi", m.cfg.CellName), nil)
		return ExitShutdown, true
	}
	m.report(fmt.Sprintf("cell %s failed (state %q)", m.cfg.CellName, info.State), nil)
	return ExitFailed, true
}

// pump copies new console output to stdout. A write error (the reader of
// the container's stdout is gone) ends forwarding for good.
func (m *monitor) pump() {
	if m.console == nil {
		return
	}
	if _, err := io.Copy(m.stdout, m.console); err != nil {
		m.report("console forwarding stopped", err)
		m.console.Close()
		m.console = nil
	}
}

// trim gives memory back (Deps.Release). A failure costs only memory, so
// it goes to the log, once, and not to the container's stderr.
func (m *monitor) trim() {
	m.lastTrim = time.Now()
	if err := m.release(); err != nil && !m.trimErr && m.log != nil {
		m.trimErr = true
		m.log.Warn("monitor memory not released", "id", m.cfg.ID, "verb", Verb, "error", err.Error())
	}
}

// maybeTrim trims if the last trim is TrimInterval ago.
func (m *monitor) maybeTrim() {
	if time.Since(m.lastTrim) >= m.trimEvery {
		m.trim()
	}
}

// report writes a line to the container's stderr and to the logger.
func (m *monitor) report(msg string, err error) {
	line := "runphi: " + m.cfg.ID + ": " + msg
	if m.cfg.ID == "" {
		line = "runphi: " + msg
	}
	if err != nil {
		line += ": " + err.Error()
	}
	w := bufio.NewWriter(m.stderr)
	w.WriteString(line + "\n")
	w.Flush()
	if m.log != nil {
		attrs := []any{"id", m.cfg.ID, "verb", Verb}
		if err != nil {
			attrs = append(attrs, "error", err.Error())
		}
		m.log.Error(msg, attrs...)
	}
}
