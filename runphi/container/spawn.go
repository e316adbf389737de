package container

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/runphi/monitor"
	"github.com/runphi-go/runphi/runphi/state"
)

// started is a monitor that has said "ready" and waits for the go-ahead.
type started struct {
	proc state.Process
	sync *os.File
}

// release tells the monitor it is recorded; from then on it lives on its
// own.
func (s *started) release() error {
	defer s.sync.Close()
	if _, err := s.sync.Write([]byte{monitor.GoByte}); err != nil {
		return fmt.Errorf("monitor pid %d: %w", s.proc.PID, err)
	}
	return nil
}

// spawn starts the monitor as a child of this process and waits for its
// handshake. It adds the rollback (kill and reap) to rb.
func (m *Manager) spawn(h *state.Handle, rec *state.Container, o CreateOpts, rb *undo) (*started, error) {
	fifo := h.Path(state.FifoFile)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	if err := monitor.WriteConfig(h.Dir(), monitorConfig(h, rec)); err != nil {
		return nil, err
	}

	stdio := [3]*os.File{o.Stdin, o.Stdout, o.Stderr}
	for i, def := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		if stdio[i] == nil {
			stdio[i] = def
		}
	}
	tty := o.ConsoleSocket != ""
	if tty {
		slave, err := sendPty(o.ConsoleSocket)
		if err != nil {
			return nil, err
		}
		defer slave.Close()
		stdio = [3]*os.File{slave, slave, slave}
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("monitor sync socket: %w", err)
	}
	// Our end is non-blocking so that reads honour a deadline.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("monitor sync socket: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "sync")
	child := os.NewFile(uintptr(fds[1]), "sync")

	argv := append(append([]string(nil), m.o.MonitorCommand...), h.Dir())
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	cmd.ExtraFiles = []*os.File{child} // fd 3 = monitor.SyncFD
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), m.o.MonitorEnv...)
	// A session of its own: signals to create's process group (a ^C on
	// the terminal running create) do not reach the container, and with
	// a pty the slave becomes its controlling terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: tty, Ctty: 0}
	err = cmd.Start()
	child.Close()
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("monitor: %w", err)
	}
	m.addChild(rec.ID, cmd)
	rb.add(func() error {
		parent.Close()
		m.killChild(rec.ID)
		return nil
	})

	if err := m.awaitReady(parent, cmd.Process.Pid); err != nil {
		return nil, err
	}
	// The monitor now waits for the go-ahead, so its pid is its own.
	proc, err := state.ProcessOf(cmd.Process.Pid)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return &started{proc: proc, sync: parent}, nil
}

// awaitReady reads the monitor's handshake line.
func (m *Manager) awaitReady(sync *os.File, pid int) error {
	if err := sync.SetReadDeadline(time.Now().Add(m.o.ReadyTimeout)); err != nil {
		return fmt.Errorf("monitor pid %d: %w", pid, err)
	}
	line, err := bufio.NewReader(io.LimitReader(sync, 4096)).ReadString('\n')
	line = strings.TrimSuffix(line, "\n")
	switch {
	case err == nil && line == monitor.MsgReady:
		return sync.SetReadDeadline(time.Time{})
	case strings.HasPrefix(line, monitor.MsgErrorPrefix):
		return fmt.Errorf("monitor: %s", strings.TrimPrefix(line, monitor.MsgErrorPrefix))
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("monitor pid %d: not ready after %v", pid, m.o.ReadyTimeout)
	case err != nil:
		return fmt.Errorf("monitor pid %d exited during setup", pid)
	}
	return fmt.Errorf("monitor pid %d: unexpected handshake %q", pid, line)
}

// child is a monitor started by this process. One goroutine waits for it,
// so that the status can be both awaited (Wait) and reaped (Delete).
type child struct {
	cmd    *exec.Cmd
	done   chan struct{}
	status int // exit code or 128+signal, valid after done
	err    error
}

func (m *Manager) addChild(id string, cmd *exec.Cmd) {
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		err := cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			c.err = err
			return
		}
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			c.status = 128 + int(ws.Signal())
		} else {
			c.status = ws.ExitStatus()
		}
	}()
	m.mu.Lock()
	m.children[id] = c
	m.mu.Unlock()
}

func (m *Manager) child(id string) *child {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.children[id]
}

// reap waits until a monitor this process started, if any, has been
// reaped, so that it does not linger as a zombie of a long-lived caller
// (tests, benchmarks), and forgets it.
func (m *Manager) reap(id string) {
	if c := m.child(id); c != nil {
		<-c.done
		m.mu.Lock()
		if m.children[id] == c {
			delete(m.children, id)
		}
		m.mu.Unlock()
	}
}

// killChild kills and reaps a monitor this process started, if any.
func (m *Manager) killChild(id string) {
	if c := m.child(id); c != nil {
		_ = c.cmd.Process.Kill()
		m.reap(id)
	}
}

// waiter returns a function that waits for the monitor of id started by
// this process and returns its status; it keeps working after Delete.
func (m *Manager) waiter(id string) func() (int, error) {
	c := m.child(id)
	return func() (int, error) {
		if c == nil {
			return 0, fmt.Errorf("container %s: no monitor started by this process", id)
		}
		<-c.done
		return c.status, c.err
	}
}

// Wait waits for the monitor of id started by this Manager (in this
// process) and returns its exit status as the shim would report it: the
// exit code, or 128+signal. It is for in-process callers such as tests;
// the runphi CLI exits after create and the shim reaps the monitor.
func (m *Manager) Wait(id string) (int, error) {
	code, err := m.waiter(id)()
	m.reap(id)
	return code, err
}

// sendPty opens a pty, sends its master over the unix socket at path (as
// runc does for --console-socket) and returns the slave.
func sendPty(path string) (*os.File, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	defer master.Close()
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("console: unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("console: pty number: %w", err)
	}
	slavePath := fmt.Sprintf("/dev/pts/%d", n)
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		slave.Close()
		return nil, fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		slave.Close()
		return nil, fmt.Errorf("console socket %s: not a unix socket", path)
	}
	// The name travels with the descriptor, as runc sends it.
	if _, _, err := uc.WriteMsgUnix([]byte(slavePath), unix.UnixRights(fd), nil); err != nil {
		slave.Close()
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	return slave, nil
}
