//go:build linux

package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/runphi-go/runphi/integration/cuse"
	"github.com/runphi-go/runphi/jhctl/emu"
)

// consolePoll is how often a blocking console read looks for new data, as
// the driver does.
const consolePoll = 100 * time.Millisecond

// device serves the emulated /dev/jailhouse: ioctls go to the emulator,
// reads are the console stream with a position per open file.
type device struct {
	e   emu.Engine
	log *slog.Logger

	mu    sync.Mutex
	next  uint64
	files map[uint64]*openFile
}

type openFile struct {
	mu  sync.Mutex
	cur emu.ConsoleCursor
}

func newDevice(e emu.Engine, log *slog.Logger) *device {
	return &device{e: e, log: log, files: map[uint64]*openFile{}}
}

func (d *device) Open(c cuse.Caller, flags uint32) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next++
	d.files[d.next] = &openFile{}
	return d.next, nil
}

func (d *device) Release(fh uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.files, fh)
}

func (d *device) file(fh uint64) (*openFile, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.files[fh]
	if f == nil {
		return nil, syscall.EBADF
	}
	return f, nil
}

// Read is the console stream: a blocking read looks again every 100 ms and
// gives up with EINTR when the caller is interrupted.
func (d *device) Read(ctx context.Context, c cuse.Caller, fh uint64, size uint32, nonblock bool) ([]byte, error) {
	f, err := d.file(fh)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	for {
		var n int
		var wait bool
		err := d.e.View(func(h *emu.Hypervisor) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			var rerr error
			n, wait, rerr = h.ReadConsole(&f.cur, buf, nonblock)
			return rerr
		})
		if !wait || err != nil {
			return buf[:n], err
		}
		select {
		case <-ctx.Done():
			return nil, syscall.EINTR
		case <-time.After(consolePoll):
		}
	}
}

// Ioctl hands the request to the emulator, which reads the caller's memory
// through mem; a fetch the CUSE server still has to make comes back as
// cuse.ErrNeedMemory with nothing changed.
func (d *device) Ioctl(c cuse.Caller, fh uint64, cmd uint32, arg uint64, mem *cuse.Memory) error {
	err := d.e.Update(func(h *emu.Hypervisor) error { return h.Ioctl(uint(cmd), arg, mem) })
	if !errors.Is(err, cuse.ErrNeedMemory) {
		d.log.Debug("ioctl", "request", requestName(cmd), "pid", c.PID, "result", errText(err))
	}
	return err
}

func requestName(cmd uint32) string {
	switch cmd {
	case emu.ReqEnable:
		return "JAILHOUSE_ENABLE"
	case emu.ReqDisable:
		return "JAILHOUSE_DISABLE"
	case emu.ReqCellCreate:
		return "JAILHOUSE_CELL_CREATE"
	case emu.ReqCellLoad:
		return "JAILHOUSE_CELL_LOAD"
	case emu.ReqCellStart:
		return "JAILHOUSE_CELL_START"
	case emu.ReqCellDestroy:
		return "JAILHOUSE_CELL_DESTROY"
	}
	return "unknown"
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
