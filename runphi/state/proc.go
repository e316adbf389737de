package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Process identifies a process across pid reuse: its pid and its start
// time in clock ticks since boot (field 22 of /proc/<pid>/stat), the pair
// runc and CRI-O compare.
type Process struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// ErrNoProcess means the pid does not exist.
var ErrNoProcess = errors.New("no such process")

// procStat is what runphi reads from /proc/<pid>/stat.
type procStat struct {
	State     byte   // R, S, D, Z, X, ...
	StartTime uint64 // field 22
}

// parseStat reads /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may itself contain spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no command name")
	}
	fields := bytes.Fields(data[i+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("stat: %d fields after the command name, want at least 20", len(fields))
	}
	if c := fields[0]; len(c) != 1 || !(c[0] >= 'A' && c[0] <= 'Z' || c[0] >= 'a' && c[0] <= 'z') {
		return procStat{}, fmt.Errorf("stat: state %q is not one letter", c)
	}
	start, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat: start time: %w", err)
	}
	return procStat{State: fields[0][0], StartTime: start}, nil
}

func readStat(pid int) (procStat, error) {
	if pid <= 0 {
		return procStat{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return procStat{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
		}
		return procStat{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	st, err := parseStat(data)
	if err != nil {
		return procStat{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return st, nil
}

// ProcessOf returns the identity of the running process pid.
func ProcessOf(pid int) (Process, error) {
	st, err := readStat(pid)
	if err != nil {
		return Process{}, err
	}
	return Process{PID: pid, StartTime: st.StartTime}, nil
}

// Self returns the identity of the calling process.
func Self() (Process, error) { return ProcessOf(os.Getpid()) }

// Alive reports whether p still runs: the pid exists, it is the same
// process (same start time) and it is neither a zombie nor dead. A zombie
// has finished; its parent (the shim) just has not reaped it yet.
func (p Process) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	st, err := readStat(p.PID)
	if err != nil {
		return false
	}
	return st.StartTime == p.StartTime && st.State != 'Z' && st.State != 'X' && st.State != 'x'
}

// Signal sends sig to p if it is still the same process. It opens a pidfd
// first and checks the start time after opening it, so a recycled pid is
// never signalled; without pidfd support (Linux before 5.3) it falls back
// to kill(2) after the same check. A process that has gone gives an error
// wrapping ErrNoProcess.
func (p Process) Signal(sig unix.Signal) error {
	if p.PID <= 0 {
		return fmt.Errorf("pid %d: %w", p.PID, ErrNoProcess)
	}
	fd, err := unix.PidfdOpen(p.PID, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return fmt.Errorf("pid %d: %w", p.PID, ErrNoProcess)
	case errors.Is(err, unix.ENOSYS):
		fd = -1
	case err != nil:
		return fmt.Errorf("pidfd_open %d: %w", p.PID, err)
	}
	if fd >= 0 {
		defer unix.Close(fd)
	}
	if !p.Alive() {
		return fmt.Errorf("pid %d: %w", p.PID, ErrNoProcess)
	}
	if fd >= 0 {
		err = unix.PidfdSendSignal(fd, sig, nil, 0)
	} else {
		err = unix.Kill(p.PID, sig)
	}
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("pid %d: %w", p.PID, ErrNoProcess)
	}
	if err != nil {
		return fmt.Errorf("signal %d to pid %d: %w", sig, p.PID, err)
	}
	return nil
}
